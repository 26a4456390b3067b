"""Load named SQL queries from ``db/queries/*.sql``.

A file holds queries separated by ``-- name: <query_name>`` lines; the lines after the
name up to the next one are the query. Parameters are always bound (``%(name)s``).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_SPLIT = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries(group: str) -> dict[str, str]:
    """Return ``{name: sql}`` for ``db/queries/<group>.sql``."""
    text = (resources.files("db") / "queries" / f"{group}.sql").read_text()
    parts = _SPLIT.split(text)
    queries = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name} defined twice in {group}.sql")
        queries[name] = body.strip()
    return queries
