"""The migration runner: fresh database, re-run, checksum drift, lock, bad files."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from psycopg import AsyncConnection

from db.migrate import MIGRATIONS_DIR, MigrationError, load_migrations, migrate


async def _tables(url: str) -> set[str]:
    async with await AsyncConnection.connect(url) as conn:
        rows = await (
            await conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ).fetchall()
    return {r[0] for r in rows}


async def test_fresh_database_gets_every_table(empty_db_url: str) -> None:
    applied = await migrate(empty_db_url)
    assert applied == [m.name for m in load_migrations()]
    tables = await _tables(empty_db_url)
    for table in (
        "profiles",
        "workspaces",
        "jobs",
        "approvals",
        "memories",
        "job_steps",
        "generations",
        "prompts",
        "assets",
        "ai_models",
        "user_api_keys",
        "platform_connections",
        "performance_metrics",
        "metric_sync_logs",
        "status_transitions",
    ):
        assert table in tables
    assert "schema_migrations" not in tables  # the ledger is orchestrator.schema_migrations


async def test_rerun_applies_nothing(empty_db_url: str) -> None:
    await migrate(empty_db_url)
    assert await migrate(empty_db_url) == []


async def test_every_table_has_row_level_security(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'orchestrator') AND c.relkind = 'r' "
                "AND NOT c.relrowsecurity"
            )
        ).fetchall()
    assert rows == []


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def test_changed_applied_file_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    await migrate(empty_db_url, directory)
    first = sorted(directory.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match="checksum mismatch"):
        await migrate(empty_db_url, directory)


async def test_new_file_is_applied_after_the_others(empty_db_url: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    await migrate(empty_db_url, directory)
    (directory / "9999_extra.sql").write_text("CREATE TABLE public.extra (id int);")
    assert await migrate(empty_db_url, directory) == ["9999_extra.sql"]
    assert "extra" in await _tables(empty_db_url)


async def test_failed_migration_rolls_back_and_is_not_recorded(
    empty_db_url: str, tmp_path: Path
) -> None:
    directory = _copy_migrations(tmp_path)
    await migrate(empty_db_url, directory)
    (directory / "9999_broken.sql").write_text(
        "CREATE TABLE public.half (id int);\nSELECT * FROM no_such_table;"
    )
    with pytest.raises(Exception, match="no_such_table"):
        await migrate(empty_db_url, directory)
    assert "half" not in await _tables(empty_db_url)
    (directory / "9999_broken.sql").write_text("CREATE TABLE public.half (id int);")
    assert await migrate(empty_db_url, directory) == ["9999_broken.sql"]


async def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    (directory / "extra.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"not named NNNN_name\.sql"):
        load_migrations(directory)


async def test_unknown_applied_version_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    (directory / "9999_extra.sql").write_text("SELECT 1;")
    await migrate(empty_db_url, directory)
    (directory / "9999_extra.sql").unlink()
    with pytest.raises(MigrationError, match="does not know"):
        await migrate(empty_db_url, directory)


async def test_concurrent_runs_wait_for_the_lock(empty_db_url: str, tmp_path: Path) -> None:
    """Two migrators at once: the lock serialises them, so each file is applied once."""
    holder = await AsyncConnection.connect(empty_db_url, autocommit=True)
    from db.migrate import LOCK_KEY

    await holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    first = asyncio.create_task(migrate(empty_db_url))
    second = asyncio.create_task(migrate(empty_db_url))
    await asyncio.sleep(0.5)
    assert not first.done() and not second.done(), "migration ran while the lock was held"
    await holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    await holder.close()
    results = await asyncio.gather(first, second)
    assert sorted(len(r) for r in results) == [0, len(load_migrations())]
