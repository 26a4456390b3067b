"""Upgrading a database migrated by the code before issue 25.

``main_migrations/`` holds the migration files as they were (0001-0010, byte for byte);
their ledger was ``public.schema_migrations``. Several of those files were rewritten in
place to apply on Supabase and to adopt the seeds' tables; ``db.migrate.SUPERSEDED`` lists
the checksums of their earlier texts.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from psycopg import AsyncConnection

from db.catalog import snapshot
from db.migrate import SUPERSEDED, MigrationError, load_migrations, migrate, run_migrations

MAIN = Path(__file__).parent / "main_migrations"

# main's runner, as it was.
MAIN_LEDGER = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _migrate_like_main(url: str) -> None:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(MAIN_LEDGER)
        for path in sorted(MAIN.glob("*.sql")):
            text = path.read_text()
            async with conn.transaction():
                await conn.execute(text.encode())
                await conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, checksum) "
                    "VALUES (%s, %s, %s)",
                    (path.name[:4], path.name, hashlib.sha256(text.encode()).hexdigest()),
                )


async def _facts(url: str) -> dict[str, str]:
    async with await AsyncConnection.connect(url) as conn:
        return await snapshot(conn)


def test_superseded_checksums_are_the_earlier_texts() -> None:
    current = {m.version: m for m in load_migrations()}
    earlier = {p.name[:4]: hashlib.sha256(p.read_bytes()).hexdigest() for p in MAIN.glob("*")}
    rewritten = {v for v, c in earlier.items() if current[v].checksum != c}
    assert rewritten == set(SUPERSEDED)
    for version in rewritten:
        assert SUPERSEDED[version] == {earlier[version]}


async def test_upgrade_keeps_rows_moves_the_ledger_and_ends_as_a_fresh_database(
    empty_db_url: str, db_url: str
) -> None:
    await _migrate_like_main(empty_db_url)
    user = uuid.uuid4()
    async with await AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO auth.users (id, email) VALUES (%s, 'u@x.com')", (user,))
        await conn.execute(
            "INSERT INTO public.profiles (id, email_address) VALUES (%s, 'u@x.com')", (user,)
        )
        await conn.execute("INSERT INTO public.jobs (user_id, title) VALUES (%s, 'kept')", (user,))

    report = await run_migrations(empty_db_url)

    newer = [m.name for m in load_migrations() if m.version > "0010"]
    assert report.applied == newer
    assert report.notes[0] == (
        "moved the migration ledger from public.schema_migrations to orchestrator.schema_migrations"
    )
    upgraded = await _facts(empty_db_url)
    fresh = await _facts(db_url)
    assert upgraded == fresh
    async with await AsyncConnection.connect(empty_db_url) as conn:
        assert await (await conn.execute("SELECT title FROM public.jobs")).fetchall() == [("kept",)]
        ledger = await (
            await conn.execute("SELECT count(*) FROM orchestrator.schema_migrations")
        ).fetchone()
    assert ledger == (len(load_migrations()),)
    assert await migrate(empty_db_url) == []


async def test_another_tools_ledger_is_left_alone(empty_db_url: str) -> None:
    """dbmate's public.schema_migrations (one column) is theirs: not moved, not touched."""
    async with await AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY)")
        await conn.execute("INSERT INTO public.schema_migrations VALUES ('20240101000000')")
    await migrate(empty_db_url)
    async with await AsyncConnection.connect(empty_db_url) as conn:
        rows = await (await conn.execute("SELECT * FROM public.schema_migrations")).fetchall()
        rls = await (
            await conn.execute(
                "SELECT relrowsecurity FROM pg_class "
                "WHERE oid = 'public.schema_migrations'::regclass"
            )
        ).fetchone()
    assert rows == [("20240101000000",)]
    assert rls == (False,)


async def test_a_ledger_with_our_columns_but_other_names_is_not_taken(
    empty_db_url: str,
) -> None:
    async with await AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        await conn.execute(MAIN_LEDGER)
        await conn.execute(
            "INSERT INTO public.schema_migrations (version, name, checksum) "
            "VALUES ('20240101', 'create_users', 'x')"
        )
    await migrate(empty_db_url)
    async with await AsyncConnection.connect(empty_db_url) as conn:
        rows = await (await conn.execute("SELECT name FROM public.schema_migrations")).fetchall()
    assert rows == [("create_users",)]


async def test_an_edited_file_is_still_refused_after_an_upgrade(
    empty_db_url: str, tmp_path: Path
) -> None:
    await _migrate_like_main(empty_db_url)
    directory = tmp_path / "migrations"
    directory.mkdir()
    for m in load_migrations():
        text = m.sql + ("\n-- edited\n" if m.version == "0006" else "")
        (directory / m.name).write_text(text)
    with pytest.raises(MigrationError, match=r"0006_webhook_events\.sql changed"):
        await migrate(empty_db_url, directory)
