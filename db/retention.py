"""Retention: which rows go when (seed 002's ``retention_policies``), a batch at a time.

Every kind of record is a few steps: archive what is past its active days, then delete
from the archive what is past its archive days; kinds without an archive are deleted
once past both. Each step runs in batches (``run_batch``: one short transaction each,
locking only the rows it moves) from a cursor, so the caller can heartbeat the cursor and
resume after a crash without reading again what it already passed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("retention")
Phase = Literal["archive", "purge"]


@dataclass(frozen=True)
class Step:
    """One step of one kind: its batch query, the table it reads, which days apply and
    which stamp it sets on the policy when it is done."""

    entity_type: str
    phase: Phase
    query: str
    table: str  # must exist, else the kind is skipped
    # Rows older than: the active days, the archive days (of the archive's own rows), or
    # both (kinds deleted without an archive).
    days: Literal["active", "archive", "both"]


STEPS: tuple[Step, ...] = (
    Step("activity_log", "archive", "archive_activity_log", "public.activity_log", "active"),
    Step(
        "activity_log",
        "purge",
        "purge_archived_activity_log",
        "public.archived_activity_log",
        "archive",
    ),
    Step(
        "notification_queue",
        "archive",
        "archive_notification_queue",
        "public.notification_queue",
        "active",
    ),
    Step(
        "notification_queue",
        "purge",
        "purge_archived_notification_queue",
        "public.archived_notification_queue",
        "archive",
    ),
    Step(
        "status_transitions",
        "archive",
        "archive_status_transitions",
        "public.status_transitions",
        "active",
    ),
    Step(
        "status_transitions",
        "purge",
        "purge_archived_status_transitions",
        "public.archived_status_transitions",
        "archive",
    ),
    Step("webhook_events", "purge", "delete_webhook_events", "public.webhook_events", "both"),
    Step("blobs", "purge", "lock_blobs_of_finished_jobs", "public.blobs", "both"),
)


class Policy(BaseModel):
    """A kind's retention policy."""

    id: UUID
    entity_type: str
    active_retention_days: int
    archive_retention_days: int | None

    def cutoff(self, step: Step, as_of: datetime) -> datetime:
        """Rows of the step older than this go."""
        archive = self.archive_retention_days or 0
        days = {"active": self.active_retention_days, "archive": archive}.get(
            step.days, self.active_retention_days + archive
        )
        return as_of - timedelta(days=days)


class Batch(BaseModel):
    """What one batch did and where the next one starts (``seen`` below the batch size:
    the step is done)."""

    seen: int
    moved: int
    last_ts: datetime | None
    last_key: str | None


async def policies(conn: Conn) -> dict[str, Policy]:
    """The policy of each kind (kinds without one are left alone)."""
    rows = await (await conn.execute(Q["policies"])).fetchall()
    return {r["entity_type"]: Policy.model_validate(r) for r in rows}


async def table_present(conn: Conn, table: str) -> bool:
    """Whether the table exists."""
    row = await (await conn.execute(Q["table_present"], {"name": table})).fetchone()
    return bool(row and row["present"])


async def stamp(conn: Conn, policy: Policy, phase: Phase) -> None:
    """``last_archived_at`` / ``last_purged_at`` of the policy: now."""
    await conn.execute(
        Q["stamp_archived" if phase == "archive" else "stamp_purged"], {"id": policy.id}
    )


def _params(
    cutoff: datetime, after_ts: datetime | None, after_key: str | None, limit: int
) -> dict[str, Any]:
    return {"cutoff": cutoff, "after_ts": after_ts, "after_key": after_key, "limit": limit}


async def run_batch(
    conn: Conn,
    step: Step,
    *,
    cutoff: datetime,
    after_ts: datetime | None,
    after_key: str | None,
    limit: int,
    delete_objects: Callable[[list[str]], Awaitable[None]] | None = None,
) -> Batch:
    """One batch of a step, in one transaction. Blobs: their objects (``object_key``) are
    deleted through ``delete_objects`` while their rows are locked, then the rows; a crash
    in between leaves rows whose objects are gone, deleted by the next batch (deleting a
    missing object succeeds)."""
    params = _params(cutoff, after_ts, after_key, limit)
    async with conn.transaction():
        await conn.execute(Q["tag_retention"])
        if step.entity_type != "blobs":
            row = await (await conn.execute(Q[step.query], params)).fetchone()
            assert row is not None
            return Batch(
                seen=row["seen"], moved=row["n"], last_ts=row["last_ts"], last_key=row["last_key"]
            )
        blobs = await (await conn.execute(Q[step.query], params)).fetchall()
        if not blobs:
            return Batch(seen=0, moved=0, last_ts=None, last_key=None)
        # Without object storage, a blob whose bytes are in a bucket is kept (its object
        # would be left behind).
        going = [b for b in blobs if not b["object_key"] or delete_objects is not None]
        keys = [b["object_key"] for b in going if b["object_key"]]
        if keys and delete_objects is not None:
            await delete_objects(keys)
        await conn.execute(Q["delete_blobs"], {"ids": [b["id"] for b in going]})
        last = blobs[-1]
        return Batch(
            seen=len(blobs), moved=len(going), last_ts=last["created_at"], last_key=str(last["id"])
        )
