"""A readable picture of a database's schema, and what changed between two pictures.

``orchestrator migrate --plan`` shows an agency what the migrations would change in the
schema of the database their app uses, before anything changes; the tests compare the
schema a fresh migration builds with the one an upgrade builds. One fact per line:
``<kind> <object>`` mapped to its definition as Postgres prints it.
"""

from __future__ import annotations

from typing import Any

from db.queries import load_queries

Q = load_queries("catalog")


async def snapshot(conn: Any) -> dict[str, str]:
    """Every schema object outside the system schemas, as ``{fact: definition}``.

    Objects that belong to an extension (pgvector's functions) count as the extension.
    """
    rows = await (await conn.execute(Q["snapshot"])).fetchall()
    return {str(_get(r, "key", 0)): str(_get(r, "value", 1)) for r in rows}


def _get(row: Any, name: str, index: int) -> Any:
    return row[name] if isinstance(row, dict) else row[index]


def describe_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """One line per change: ``+ fact: definition``, ``- fact``, ``~ fact: old -> new``."""
    lines = []
    for key in sorted(before.keys() | after.keys(), key=_order):
        if key not in before:
            lines.append(f"+ {key}" + (f": {after[key]}" if after[key] else ""))
        elif key not in after:
            lines.append(f"- {key}")
        elif before[key] != after[key]:
            lines.append(f"~ {key}: {before[key] or '-'} -> {after[key] or '-'}")
    return lines


_KINDS = ["role", "extension", "schema", "table", "column", "constraint", "index", "sequence"]


def _order(key: str) -> tuple[str, int, str]:
    kind, _, name = key.partition(" ")
    parts = name.split(".")
    table = ".".join(parts[:2])
    rank = _KINDS.index(kind) if kind in _KINDS else len(_KINDS)
    return (table, rank, key)
