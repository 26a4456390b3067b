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

from psycopg import sql
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("retention")
Phase = Literal["archive", "purge"]


@dataclass(frozen=True)
class Archive:
    """Where a kind's rows are archived, and what of them: the archive table, the row
    columns it keeps (``id`` first), the time column the days count from, the id's type,
    and the ``kind_keeps_*`` condition of rows that must stay."""

    table: str
    columns: tuple[str, ...]
    ts: str = "created_at"
    key: Literal["uuid", "bigint"] = "uuid"
    keep: str = "kind_keeps_nothing"


@dataclass(frozen=True)
class Step:
    """One step of one kind: what it reads (``table``, which must exist, else the kind is
    skipped), which days apply and which stamp it sets on the policy when it is done. An
    archive step moves rows into ``archive``; a purge step of an archive deletes from it;
    the other purges (``query``) have their own statement."""

    entity_type: str
    phase: Phase
    table: str
    # Rows older than: the active days, the archive days (of the archive's own rows), or
    # both (kinds deleted without an archive).
    days: Literal["active", "archive", "both"]
    archive: Archive | None = None
    query: str | None = None

    def statement(self) -> sql.SQL | sql.Composed:
        """The batch statement of this step."""
        if self.query is not None:
            return sql.SQL(Q[self.query])
        assert self.archive is not None
        a = self.archive
        if self.phase == "purge":
            return sql.SQL(Q["purge_batch"]).format(archive=_name(self.table), key=sql.SQL(a.key))
        return sql.SQL(Q["archive_batch"]).format(
            table=_name(self.table),
            archive=_name(a.table),
            ts=sql.Identifier(a.ts),
            key=sql.SQL(a.key),
            keep=sql.SQL(Q[a.keep]),
            columns=sql.SQL(", ").join(map(sql.Identifier, a.columns)),
            returned=sql.SQL(", ").join(sql.Identifier("s", c) for c in a.columns),
        )


def _name(table: str) -> sql.Identifier:
    schema, name = table.split(".")
    return sql.Identifier(schema, name)


FEED = Archive(
    "public.archived_activity_log",
    ("id", "user_id", "entity_type", "entity_id", "action", "details", "created_at"),
)
QUEUE = Archive(
    "public.archived_notification_queue",
    (
        "id",
        "config_id",
        "entity_id",
        "entity_type",
        "event_data",
        "is_processed",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "processed_at",
        # Ours (0029; archived since 0030): the event, channel, owner and outcome.
        "event_key",
        "event_type",
        "channel_id",
        "user_id",
        "org_id",
        "outcome",
        "external_id",
        "sent_at",
        "temporal_workflow_id",
    ),
    keep="kind_keeps_unsent",
)
LOG = Archive(
    "public.archived_status_transitions",
    (
        "id",
        "entity",
        "entity_id",
        "from_status",
        "to_status",
        "at",
        "reason",
        "workflow_id",
        "run_id",
        "actor_role",
        "actor_user_id",
    ),
    ts="at",
    key="bigint",
    keep="kind_keeps_open_work",
)
STEPS: tuple[Step, ...] = (
    Step("activity_log", "archive", "public.activity_log", "active", FEED),
    Step("activity_log", "purge", FEED.table, "archive", FEED),
    Step("notification_queue", "archive", "public.notification_queue", "active", QUEUE),
    Step("notification_queue", "purge", QUEUE.table, "archive", QUEUE),
    Step("status_transitions", "archive", "public.status_transitions", "active", LOG),
    Step("status_transitions", "purge", LOG.table, "archive", LOG),
    Step("webhook_events", "purge", "public.webhook_events", "both", query="delete_webhook_events"),
    Step("blobs", "purge", "public.blobs", "both", query="lock_blobs_of_finished_jobs"),
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
            row = await (await conn.execute(step.statement(), params)).fetchone()
            assert row is not None
            return Batch(
                seen=row["seen"], moved=row["n"], last_ts=row["last_ts"], last_key=row["last_key"]
            )
        blobs = await (await conn.execute(step.statement(), params)).fetchall()
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
