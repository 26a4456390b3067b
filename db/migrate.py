"""Apply the numbered SQL files in ``db/migrations/`` in order, once each.

Each file runs in its own transaction and is recorded with its checksum; a changed
checksum of an applied file stops everything, and a session advisory lock keeps two
processes from migrating at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from psycopg import AsyncConnection

from db.pool import connect

MIGRATIONS_DIR = Path(str(resources.files("db") / "migrations"))
# pg_advisory_lock key: any constant shared by every process of this project.
LOCK_KEY = 0x6167656E6379  # "agency"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version, name, checksum FROM public.schema_migrations ORDER BY version"
INSERT_APPLIED = """
INSERT INTO public.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s)
"""


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
    migrations = load_migrations(directory)
    conn = await connect(url, autocommit=True)
    async with conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            return await _apply_pending(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


async def _apply_pending(
    conn: AsyncConnection[dict[str, object]], migrations: list[Migration]
) -> list[str]:
    await conn.execute(CREATE_LEDGER)
    applied = {
        str(row["version"]): row for row in await (await conn.execute(SELECT_APPLIED)).fetchall()
    }
    known = {m.version: m for m in migrations}
    for version, row in applied.items():
        if version not in known:
            raise MigrationError(
                f"database has migration {row['name']} that this code does not know: "
                "upgrade the code before running it against this database"
            )
        if row["checksum"] != known[version].checksum:
            raise MigrationError(
                f"migration {row['name']} changed after it was applied (checksum mismatch): "
                "restore the file and add a new migration instead"
            )
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql.encode())
            await conn.execute(
                INSERT_APPLIED,
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
        done.append(migration.name)
    return done
