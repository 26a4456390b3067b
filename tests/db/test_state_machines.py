"""The database enforces the status state machines and logs every change once."""

from __future__ import annotations

import itertools
import uuid

import pytest
from psycopg import AsyncConnection, errors, sql

from tests.db.factories import insert_user

STATUSES = {
    "jobs": ["pending", "running", "waiting_approval", "completed", "failed", "cancelled"],
    "approvals": ["pending", "approved", "rejected", "expired", "cancelled"],
    "generations": [
        "pending",
        "submitting",
        "queued",
        "in_progress",
        "completed",
        "failed",
        "nsfw",
        "cancelled",
    ],
}
ALLOWED = {
    "jobs": {
        ("pending", "running"),
        ("pending", "failed"),
        ("pending", "cancelled"),
        ("running", "waiting_approval"),
        ("running", "completed"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("waiting_approval", "running"),
        ("waiting_approval", "failed"),
        ("waiting_approval", "cancelled"),
    },
    "approvals": {("pending", s) for s in ("approved", "rejected", "expired", "cancelled")},
}
_ORDER = {"pending": 1, "submitting": 2, "queued": 3, "in_progress": 4}
ALLOWED["generations"] = {
    (a, b)
    for a, b in itertools.product(STATUSES["generations"], repeat=2)
    if a in _ORDER
    and _ORDER.get(b, 5) > _ORDER[a]
    and not (a == "pending" and b in ("queued", "in_progress", "completed", "nsfw"))
}


async def _insert(conn: AsyncConnection, table: str, status: str) -> uuid.UUID:
    """A row of ``table`` forced into ``status`` (triggers off for the setup only)."""
    user_id = await insert_user(conn)
    await conn.execute("SET session_replication_role = replica")
    if table == "jobs":
        cur = await conn.execute(
            "INSERT INTO jobs (user_id, status) VALUES (%s, %s) RETURNING id", (user_id, status)
        )
    elif table == "approvals":
        job = await (
            await conn.execute("INSERT INTO jobs (user_id) VALUES (%s) RETURNING id", (user_id,))
        ).fetchone()
        assert job is not None
        cur = await conn.execute(
            "INSERT INTO approvals (job_id, status) VALUES (%s, %s) RETURNING id", (job[0], status)
        )
    else:
        cur = await conn.execute(
            "INSERT INTO generations (user_id, prompt_text, status) VALUES (%s, 'p', %s) "
            "RETURNING id",
            (user_id, status),
        )
    await conn.execute("SET session_replication_role = origin")
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("table", sorted(STATUSES))
async def test_every_transition_outside_the_machine_is_rejected(db_url: str, table: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        for old, new in itertools.product(STATUSES[table], repeat=2):
            if old == new:
                continue
            row_id = await _insert(conn, table, old)
            update = sql.SQL("UPDATE {} SET status = %s WHERE id = %s").format(
                sql.Identifier(table)
            )
            if (old, new) in ALLOWED[table]:
                await conn.execute(update, (new, row_id))
            else:
                with pytest.raises(errors.CheckViolation, match=r"invalid .* status transition"):
                    await conn.execute(update, (new, row_id))


@pytest.mark.parametrize("table", sorted(STATUSES))
async def test_new_rows_must_start_pending(db_url: str, table: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        user_id = await insert_user(conn)
        with pytest.raises(errors.CheckViolation, match="starts as"):
            if table == "jobs":
                await conn.execute(
                    "INSERT INTO jobs (user_id, status) VALUES (%s, 'running')", (user_id,)
                )
            elif table == "generations":
                await conn.execute(
                    "INSERT INTO generations (user_id, prompt_text, status) "
                    "VALUES (%s, 'p', 'queued')",
                    (user_id,),
                )
            else:
                await conn.execute("INSERT INTO approvals (status) VALUES ('approved')")


async def test_transition_log_is_append_only(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        user_id = await insert_user(conn)
        await conn.execute("INSERT INTO jobs (user_id) VALUES (%s)", (user_id,))
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
            await conn.execute("UPDATE status_transitions SET reason = 'rewritten'")
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
            await conn.execute("DELETE FROM status_transitions")
