"""One way to write SQL: named queries in ``db/queries/*.sql``, run by functions in ``db/``.

Activities, the ingress and the worker's process wiring call ``db/`` functions; they never
run a statement themselves (no ``.execute(``, ``.executemany(``, ``.cursor(``), never load
the named queries (``db.queries``), never build SQL (``psycopg.sql``), and hold no string
that looks like SQL. The walk reads the source with ``ast``, so a docstring or a comment
that mentions a statement is fine, and so is prose that happens to say "update".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Set
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("activities", "ingress", "workers")
RUNS_SQL = frozenset({"execute", "executemany", "cursor"})
BUILDS_SQL = frozenset({"db.queries", "psycopg.sql"})
QUERIES = "Q"  # what each db module calls its named queries
# Statements as they open: the keyword and what must follow it in SQL (not in prose).
SQL = re.compile(
    r"""
    \b(?:
        SELECT \b [\s\S]* \b FROM \b
      | SELECT \s+ (?:\d|\*|count\(|pg_|set_config)
      | INSERT \s+ INTO \b
      | UPDATE \s+ [\w."]+ \s+ SET \b
      | DELETE \s+ FROM \b
      | (?:UN)?LISTEN \s+ \S
      | NOTIFY \s+ \S
      | pg_notify \s* \(
      | (?:CREATE|ALTER|DROP) \s+ (?:TABLE|INDEX|FUNCTION|TRIGGER|ROLE|SCHEMA|DATABASE|POLICY) \b
      | ON \s+ CONFLICT \b
      | RETURNING \s+ [\w*]
    )
    """,
    re.VERBOSE,
)
# Lowercase SQL is still SQL when it binds a parameter.
SQL_ANY_CASE = re.compile(
    r"\b(?:select|insert\s+into|update|delete\s+from)\b[\s\S]*%\(\w+\)s", re.IGNORECASE
)
# Strings that look like SQL and are not ours to move, each with why.
NOT_OUR_SQL = {
    # Google Ads Query Language, sent to Google's API: not a statement for our database.
    ("activities/connectors/google_ads.py", "SELECT campaign.id"),
}


def looks_like_sql(text: str) -> bool:
    """Whether a string literal reads as an SQL statement (or a piece of one)."""
    return bool(SQL.search(text) or SQL_ANY_CASE.search(text))


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                ids.add(id(body[0].value))
    return ids


def _composed(tree: ast.AST) -> set[int]:
    """The literals handed to ``sql.SQL(...)``: a statement built around identifiers."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "SQL")
            or (isinstance(node.func, ast.Name) and node.func.id == "SQL")
        ):
            ids.update(id(arg) for arg in node.args)
    return ids


def _string_parts(tree: ast.AST, *, skip: Set[int] = frozenset()) -> list[tuple[int, str]]:
    """Every string literal (an f-string as its text with ``{}`` for each value)."""
    docstrings = _docstrings(tree) | skip
    inside_fstrings: set[int] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for part in node.values:
                inside_fstrings.add(id(part))
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    text += part.value
                else:
                    text += "{}"
            found.append((node.lineno, text))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstrings
        ):
            found.append((node.lineno, node.value))
    return found


def violations(source: str, path: str) -> list[str]:
    """Each place in ``source`` that writes or runs SQL itself, as ``path:line: what``."""
    tree = ast.parse(source, path)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RUNS_SQL
        ):
            found.append(f"{path}:{node.lineno}: runs SQL itself (.{node.func.attr}(...))")
        elif isinstance(node, ast.Attribute) and node.attr == QUERIES:
            found.append(f"{path}:{node.lineno}: reads db's named queries (.{QUERIES})")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            for name in sorted(names & BUILDS_SQL):
                found.append(f"{path}:{node.lineno}: imports {name}")
            if node.module.startswith("db") and any(a.name == QUERIES for a in node.names):
                found.append(f"{path}:{node.lineno}: imports db's named queries ({QUERIES})")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in BUILDS_SQL:
                    found.append(f"{path}:{node.lineno}: imports {alias.name}")
    for line, text in _string_parts(tree):
        if looks_like_sql(text) and not any(
            path == allowed_path and text.startswith(start) for allowed_path, start in NOT_OUR_SQL
        ):
            found.append(f"{path}:{line}: SQL in a string: {text.strip()[:60]!r}")
    return sorted(found)


def test_no_sql_outside_db() -> None:
    """Activities, the ingress and the workers reach the database only through ``db/``."""
    found = []
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            found += violations(file.read_text(), path)
    assert not found, "SQL outside db/ (move it to db/queries/*.sql):\n" + "\n".join(found)


def sql_strings_in_db(source: str, path: str) -> list[str]:
    """SQL that a ``db/`` module holds as a Python string instead of a named query: only
    what ``psycopg.sql`` composes around identifiers may be written in Python."""
    tree = ast.parse(source, path)
    return [
        f"{path}:{line}: SQL in a string: {text.strip()[:60]!r}"
        for line, text in _string_parts(tree, skip=_composed(tree))
        if looks_like_sql(text)
    ]


def test_db_keeps_its_sql_in_named_queries() -> None:
    """``db/`` modules read their statements from ``db/queries/*.sql`` (no constants)."""
    found = []
    for file in sorted((ROOT / "db").rglob("*.py")):
        found += sql_strings_in_db(file.read_text(), file.relative_to(ROOT).as_posix())
    assert not found, "SQL in db/ modules (move it to db/queries/*.sql):\n" + "\n".join(found)


def test_db_may_compose_around_identifiers_only() -> None:
    """A statement composed with ``sql.SQL`` is allowed in db/; a constant is not."""
    composed = 'q = sql.SQL("SELECT * FROM {} WHERE id = %(id)s").format(sql.Identifier(t))'
    assert sql_strings_in_db(composed, "db/x.py") == []
    assert sql_strings_in_db('GET = "SELECT data FROM public.blobs WHERE id = %(id)s"', "db/x.py")


def test_the_walk_covers_files() -> None:
    """The walk reads the packages it names (a renamed folder must not empty it)."""
    for package in (*PACKAGES, "db"):
        assert list((ROOT / package).rglob("*.py")), package


@pytest.mark.parametrize(
    "source",
    [
        'await conn.execute("SELECT 1")',
        "await conn.execute(Q['get_job'], {})",
        "cur = await conn.executemany(q, rows)",
        "async with conn.cursor() as cur: pass",
        'Q = "UPDATE public.generations SET error_message = %(msg)s WHERE id = %(id)s"',
        'INSERT = """\nINSERT INTO public.memories (user_id) VALUES (%(user_id)s)\n"""',
        'x = "SELECT batch_id, batch_size FROM public.generations WHERE id = %(id)s"',
        'x = f"SELECT {column} FROM public.jobs"',
        'x = "select id from public.jobs where id = %(id)s"',
        'x = "delete from public.jobs where id = %(id)s"',
        'x = "LISTEN orchestrator_dispatch"',
        "from psycopg import sql",
        "import psycopg.sql",
        "from db.queries import load_queries",
        "from db.generations import Q",
        "rows = await conn.run(jobs.Q['list_steps'])",
        'x = "... ON CONFLICT (id) DO NOTHING"',
    ],
)
def test_sql_written_outside_db_is_found(source: str) -> None:
    """Each way of writing or running SQL outside ``db/`` is caught."""
    assert violations(source, "activities/x.py")


@pytest.mark.parametrize(
    "source",
    [
        'def f():\n    """Runs SELECT ... FROM jobs through db.jobs; UPDATE x SET y."""',
        'raise ValueError("update the job owner\'s profiles.email_address")',
        'x = "select a model from the list"',
        'x = "Set ORCHESTRATOR_API to the API\'s URL"',
        "rows = await jobs.list_steps(conn, job_id)",
        "from psycopg.types.json import Jsonb",
        'log.info("selected from the queue", count=3)',
    ],
)
def test_prose_and_db_calls_are_not_sql(source: str) -> None:
    """Prose, docstrings and calls into ``db/`` are not mistaken for SQL."""
    assert violations(source, "activities/x.py") == []


def test_not_our_sql_is_only_allowed_where_named() -> None:
    """The Google Ads query is allowed in its connector only, not copied elsewhere."""
    source = 'QUERY = "SELECT campaign.id, campaign.name FROM campaign"'
    assert violations(source, "activities/connectors/google_ads.py") == []
    assert violations(source, "activities/email.py")
