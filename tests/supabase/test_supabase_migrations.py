"""`orchestrator migrate` on a database set up like a current Supabase project."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from psycopg import AsyncConnection, errors

from db.catalog import snapshot
from db.migrate import ADOPT_HELPERS, MigrationError, load_migrations, migrate, plan
from tests.supabase.conftest import database_url

SUPABASE_SCHEMAS = ("auth.", "storage.", "extensions.")


async def _snapshot(url: str) -> dict[str, str]:
    async with await AsyncConnection.connect(url) as conn:
        return await snapshot(conn)


async def _rls_off(url: str) -> list[str]:
    async with await AsyncConnection.connect(url) as conn:
        rows = await (
            await conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'orchestrator') AND c.relkind = 'r' "
                "AND NOT c.relrowsecurity"
            )
        ).fetchall()
    return [r[0] for r in rows]


async def test_migrations_apply_without_touching_what_supabase_owns(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    before = await _snapshot(admin_url_of(supabase_url))
    applied = await migrate(supabase_url)
    assert applied == [m.name for m in load_migrations()]
    after = await _snapshot(admin_url_of(supabase_url))
    supabase_owned = {k for k in before if any(s in k for s in SUPABASE_SCHEMAS)}
    assert {k: after.get(k) for k in supabase_owned} == {k: before[k] for k in supabase_owned}
    assert not [k for k in after.keys() - before.keys() if any(s in k for s in SUPABASE_SCHEMAS)]
    assert after["extension vector"] == "in schema extensions"
    assert after["column public.memories.embedding"] == "extensions.vector(1536)"
    async with await AsyncConnection.connect(supabase_url) as conn:
        row = await (
            await conn.execute(
                "SELECT atttypid::regtype::text, t.typnamespace::regnamespace::text "
                "FROM pg_attribute JOIN pg_type t ON t.oid = atttypid "
                "WHERE attrelid = 'public.memories'::regclass AND attname = 'embedding'"
            )
        ).fetchone()
    assert row == ("vector", "extensions")  # "vector": extensions is on its search_path
    assert await _rls_off(supabase_url) == []
    assert await migrate(supabase_url) == []
    assert await _snapshot(admin_url_of(supabase_url)) == after


async def test_the_old_standins_fail_there(supabase_url: str) -> None:
    """The fixture is strict enough: the text of 0001 before issue 25 is refused."""
    from pathlib import Path

    old = Path(__file__).parent / "main_migrations" / "0001_supabase_standins.sql"
    async with await AsyncConnection.connect(supabase_url, autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="schema auth"):
            await conn.execute(old.read_text().encode())


async def test_the_type_resolves_without_extensions_on_the_search_path(
    supabase_url: str,
) -> None:
    url = supabase_url + " options='-c search_path=public'"
    assert await migrate(url) == [m.name for m in load_migrations()]


async def test_migrations_apply_on_plain_postgres_as_a_superuser(empty_db_url: str) -> None:
    await migrate(empty_db_url)
    facts = await _snapshot(empty_db_url)
    assert facts["extension vector"] == "in schema public"
    assert "table auth.users" in facts
    assert "function auth.uid()" in facts
    assert await _rls_off(empty_db_url) == []


@pytest.mark.parametrize("kind", ["supabase", "plain"])
async def test_adopting_migrations_change_nothing_when_applied_again(
    kind: str, supabase_url: str, empty_db_url: str, admin_url_of: Callable[[str], str]
) -> None:
    """0001-0005 and 0007 run over their own result (an adopted database) change nothing."""
    url = supabase_url if kind == "supabase" else empty_db_url
    look = admin_url_of(url)
    await migrate(url)
    before = await _snapshot(look)

    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(ADOPT_HELPERS.read_text().encode())
        for m in load_migrations():
            if m.version in ("0001", "0003", "0004", "0005", "0007"):
                await conn.execute(m.sql.encode())
    assert await _snapshot(look) == before


async def test_a_transaction_pooler_url_is_refused_for_migrations() -> None:
    url = "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    with pytest.raises(MigrationError, match="DATABASE_MIGRATION_URL"):
        await migrate(url)


async def test_plan_changes_nothing(supabase_url: str, admin_url_of: Callable[[str], str]) -> None:
    before = await _snapshot(admin_url_of(supabase_url))
    report = await plan(supabase_url)
    assert report.applied == [m.name for m in load_migrations()]
    assert "+ table public.jobs: row level security, grants " in "\n".join(
        line[: len("+ table public.jobs: row level security, grants ")] for line in report.changes
    )
    assert await _snapshot(admin_url_of(supabase_url)) == before


def test_database_url_helper_keeps_the_socket() -> None:
    url = database_url("host=/tmp/x port=5432 user=postgres dbname=postgres", "other", "me")
    assert "host=/tmp/x" in url and "dbname=other" in url and "user=me" in url
