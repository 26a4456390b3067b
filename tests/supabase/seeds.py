"""The seeds' schemas (shared/seeds/), laid down as an app that followed them has them.

Seed 000 writes its DDL as SQL blocks: they are used verbatim (``seeds/seed_000.sql`` is
a copy, checked against the seed file whenever the file is reachable), with one fix every
team had to make: the extension is ``vector``, not ``pgvector`` (the seed's line fails on
any Postgres). Seeds 002 and 003 describe their tables as column tables in Markdown;
``seeds/seed_00N.sql`` write those tables as DDL, and ``seed_columns`` reads the seed
file's tables so a test can hold the DDL to them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HERE = Path(__file__).parent / "seeds"
REPO = Path(__file__).resolve().parents[2]


def seeds_dir() -> Path | None:
    """shared/seeds beside the repository (as CI lays it), or SEEDS_DIR, or /work/shared."""
    for candidate in (
        os.environ.get("SEEDS_DIR"),
        REPO.parent / "shared" / "seeds",
        "/work/shared/seeds",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def seed_file(number: str) -> Path | None:
    """The seed file ``NNN_*.txt``, when reachable."""
    directory = seeds_dir()
    if directory is None:
        return None
    found = sorted(directory.glob(f"{number}_*.txt"))
    return found[0] if found else None


def sql_blocks(text: str) -> str:
    """The ```sql blocks of a seed file, concatenated as they are."""
    return "".join(re.findall(r"```sql\n(.*?)```", text, re.S))


def seed_000_sql() -> str:
    """Seed 000's DDL, verbatim but for the extension's name."""
    text = (HERE / "seed_000.sql").read_text()
    fixed = text.replace("CREATE EXTENSION IF NOT EXISTS pgvector;", "")
    assert fixed.count("pgvector") == 0
    return fixed


def seed_sql(name: str) -> str:
    """``seeds/<name>.sql``."""
    return (HERE / f"{name}.sql").read_text()


_TYPES = {
    "UUID": "uuid",
    "TEXT": "text",
    "TIMESTAMPTZ": "timestamp with time zone",
    "BIGINT": "bigint",
    "INT": "integer",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "JSONB": "jsonb",
    "NUMERIC": "numeric",
    "DATE": "date",
    "TEXT[]": "text[]",
    "UUID[]": "uuid[]",
}


def pg_type(seed_type: str) -> str:
    """A seed's type as ``format_type`` prints it (``VARCHAR(50)``: character varying(50))."""
    bare = re.sub(r"\s*\((PK|FK)\)", "", seed_type).strip().strip("`")
    if m := re.fullmatch(r"VARCHAR\((\d+)\)", bare):
        return f"character varying({m.group(1)})"
    return _TYPES[bare]


def seed_columns(path: Path, table: str) -> list[tuple[str, str, str | None]]:
    """(column, type, default or None) of ``table`` as the seed file's Markdown says."""
    text = path.read_text()
    heading = re.search(
        rf"^###\s+(?:\d+\.\s+)?\**(?:public\.)?{re.escape(table)}\**(?:\s.*)?$", text, re.M
    )
    assert heading, f"{table} not in {path.name}"
    rest = text[heading.end() :]
    lines = rest.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Column"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    columns = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=False))
        default = cells.get("Default")
        if default in (None, "—", "null"):
            default = None
        columns.append((cells["Column"].strip("`"), pg_type(cells["Type"]), default))
    return columns
