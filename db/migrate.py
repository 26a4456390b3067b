"""Apply the numbered SQL files in ``db/migrations/`` in order, once each.

Each file runs in its own transaction and is recorded with its checksum in the ledger
``orchestrator.schema_migrations``; a changed checksum of an applied file stops
everything (unless the file was rewritten on purpose: ``SUPERSEDED``), and a session
advisory lock keeps two processes from migrating at once, so the connection must be a
session (direct, or Supavisor's session mode), never a transaction pooler.

Before each run the helpers of ``db/adopt.sql`` are defined in ``pg_temp``: with them a
migration adopts a table an app already has (the seeds') instead of failing on it. What a
migration could not do without changing the app's rows it says in a WARNING; the runner
returns those as notes. ``plan`` applies everything in a transaction it rolls back and
says what would change.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from psycopg import AsyncConnection, errors
from psycopg.errors import Diagnostic

from db.catalog import describe_changes, snapshot
from db.pool import connect, is_transaction_pooler
from db.queries import load_queries

MIGRATIONS_DIR = Path(str(resources.files("db") / "migrations"))
ADOPT_HELPERS = Path(str(resources.files("db") / "adopt.sql"))
# pg_advisory_lock key: any constant shared by every process of this project.
LOCK_KEY = 0x6167656E6379  # "agency"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# Migrations rewritten in place after they had been applied (issue 25: they must apply on
# Supabase, where `auth` is not ours, and adopt the seeds' tables). For each version, the
# checksums of its earlier texts. A database that applied an earlier text is in the state
# the new text produces on an empty database (tests/supabase/test_upgrade.py compares the
# two catalogs), so the earlier checksum counts as applied and the file is not run again.
# Any other change of an applied file is still refused.
SUPERSEDED: dict[str, frozenset[str]] = {
    "0001": frozenset({"3819dfb8e64308b6870e9a7c21bc286c67be548612e30f8bb48b17f422c0570f"}),
    "0002": frozenset({"e4bc0f54a7c2841489e312deabf4352c0c89ff7652621984788ccbbd377292f4"}),
    "0003": frozenset({"c50938014765b9299ffc78b37a92a40296159dfb96256ef96cc86ffddb191041"}),
    "0004": frozenset({"68c1d2d1f4b1f8b9b959859ff7e83af4deb4877757439f08a2282e84c26a90f5"}),
    "0005": frozenset({"67b6e58a89f76687031b0e0b3934404252af136dea455b6d0056e4e2b439a161"}),
    "0007": frozenset({"0a5c81d8165862fa9d29ee8ae7dfc064f060ea5feef49ade642509305d1b5ac4"}),
    "0009": frozenset({"a72a6dfc7e68ac457c404513679431ffaeeef772ab6b2b116b6e373c3b61e51f"}),
}

LEDGER_SCHEMA = "orchestrator"
# Where the ledger was until issue 25; moved on the first run of this code.
OLD_LEDGER = "public.schema_migrations"
Q = load_queries("migrate")  # the ledger's statements

Conn = AsyncConnection[dict[str, object]]


class MigrationError(RuntimeError):
    """The database and the migration files disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass
class MigrationReport:
    """What a run applied (or, for a plan, would apply) and what it has to say."""

    applied: list[str] = field(default_factory=list)
    # What the migrations left out to keep the app's rows as they are (their WARNINGs),
    # and what the runner did to the ledger.
    notes: list[str] = field(default_factory=list)
    # Only for a plan: every change to the schema, one line each (db/catalog.py).
    changes: list[str] = field(default_factory=list)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a badly named file is an error."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        migrations.append(Migration(match.group(1), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


async def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    return (await run_migrations(url, directory)).applied


async def run_migrations(url: str, directory: Path = MIGRATIONS_DIR) -> MigrationReport:
    """Apply pending migrations; return what was applied and the migrations' notes."""
    return await _run(url, directory, plan=False)


async def plan(url: str, directory: Path = MIGRATIONS_DIR) -> MigrationReport:
    """What ``migrate`` would do, without doing it: everything runs in one transaction
    that is rolled back, and the catalog before and after is compared. It takes the same
    locks as the migration, for as long as the migrations take."""
    return await _run(url, directory, plan=True)


async def _run(url: str, directory: Path, *, plan: bool) -> MigrationReport:
    if is_transaction_pooler(url):
        raise MigrationError(
            "migrations need a session connection (they hold an advisory lock), not the "
            "transaction pooler on port 6543: set DATABASE_MIGRATION_URL to the direct or "
            "session-mode connection string"
        )
    migrations = load_migrations(directory)
    report = MigrationReport()
    conn = await connect(url, autocommit=True, prepare=False)

    def on_notice(diag: Diagnostic) -> None:
        if diag.severity_nonlocalized == "WARNING" and diag.message_primary:
            report.notes.append(diag.message_primary)

    conn.add_notice_handler(on_notice)
    async with conn:
        await conn.execute(Q["lock"], {"key": LOCK_KEY})
        try:
            await conn.execute(ADOPT_HELPERS.read_text().encode())
            if plan:
                async with conn.transaction(force_rollback=True):
                    before = await snapshot(conn)
                    await _apply_pending(conn, migrations, report)
                    report.changes = describe_changes(before, await snapshot(conn))
            else:
                await _apply_pending(conn, migrations, report)
        finally:
            await conn.execute(Q["unlock"], {"key": LOCK_KEY})
    return report


async def _ledger(conn: Conn, report: MigrationReport) -> None:
    """Find, move or create the ledger; keep it out of the API roles' reach."""
    async with conn.transaction():
        if not await (await conn.execute(Q["schema_exists"])).fetchone():
            try:
                await conn.execute(Q["create_schema"])
            except errors.InsufficientPrivilege:
                raise MigrationError(
                    "the migrating role may not create the schema `orchestrator` (it needs "
                    "CREATE on the database): migrate as the database owner (`postgres` on "
                    "Supabase) or create the schema once and make that role its owner"
                ) from None
        row = await (await conn.execute(Q["ledger_exists"])).fetchone()
        if row and not row["present"]:
            if await _old_ledger_is_ours(conn):
                await conn.execute(Q["move_ledger"])
                report.notes.append(
                    "moved the migration ledger from public.schema_migrations "
                    "to orchestrator.schema_migrations"
                )
            else:
                await conn.execute(Q["create_ledger"])
        await conn.execute(Q["lock_down_ledger"])


async def _old_ledger_is_ours(conn: Conn) -> bool:
    row = await (await conn.execute(Q["old_ledger_is_ours"])).fetchone()
    if not row or not row["ours"]:
        return False  # absent, or another tool's (dbmate, golang-migrate, ...): left alone
    names = [str(r["name"]) for r in await (await conn.execute(Q["old_ledger_names"])).fetchall()]
    return bool(names) and all(_NAME.match(n) for n in names)


async def _apply_pending(conn: Conn, migrations: list[Migration], report: MigrationReport) -> None:
    await _ledger(conn, report)
    applied = {
        str(row["version"]): row for row in await (await conn.execute(Q["applied"])).fetchall()
    }
    known = {m.version: m for m in migrations}
    for version, row in applied.items():
        if version not in known:
            raise MigrationError(
                f"database has migration {row['name']} that this code does not know: "
                "upgrade the code before running it against this database"
            )
        checksum = row["checksum"]
        if checksum != known[version].checksum and checksum not in SUPERSEDED.get(
            version, frozenset()
        ):
            raise MigrationError(
                f"migration {row['name']} changed after it was applied (checksum mismatch): "
                "restore the file and add a new migration instead"
            )
    for migration in migrations:
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql.encode())
            await conn.execute(
                Q["insert_applied"],
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
        report.applied.append(migration.name)
