"""Rows the app inserted, as the dispatcher reads, locks and marks them.

Every read that leads to a start or a cancel locks its row (``FOR UPDATE SKIP LOCKED``)
for the transaction that starts or cancels the workflow, so two dispatchers (two
workers) never act on one row at once: the second skips it. The workflow id is the
row's, so even a start repeated after a crash starts nothing twice (Temporal refuses
the id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import AsyncConnection, sql
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("dispatch")
Entity = Literal["jobs", "generations"]
NOTIFY_CHANNEL = "orchestrator_dispatch"


class NewJob(BaseModel):
    """A job row the app inserted, with its workspace's owner and state."""

    id: UUID
    user_id: UUID | None
    workspace_id: UUID | None
    title: str | None
    instruction: str | None
    plan: Any
    cancel_requested_at: datetime | None
    workspace_owner: UUID | None
    workspace_active: bool | None


class NewGeneration(BaseModel):
    """A generation row the app inserted, with what its validation needs."""

    id: UUID
    user_id: UUID
    prompt_id: UUID | None
    prompt_text: str
    model: str
    settings: Any
    status: str
    batch_id: UUID | None
    batch_size: int | None
    temporal_workflow_id: str | None
    cancel_requested_at: datetime | None
    cancel_delivered_at: datetime | None
    stored_prompt_text: str | None
    prompt_index: int | None
    has_key: bool
    waited_out: bool = False


class CancelRequest(BaseModel):
    """A row whose cancel the app requested."""

    id: UUID
    status: str
    temporal_workflow_id: str | None
    batch_id: UUID | None = None
    batch_size: int | None = None


class RowRef(BaseModel):
    """A row the sweep found."""

    entity: Entity
    id: UUID
    temporal_workflow_id: str | None = None
    batch_id: UUID | None = None


class BatchMembership(BaseModel):
    """The batch a generation belongs to (both None: it stands alone)."""

    batch_id: UUID | None
    batch_size: int | None


async def lock_new_job(conn: Conn, job_id: UUID) -> NewJob | None:
    """The new job, locked; None if it is not new or another dispatcher holds it."""
    row = await (await conn.execute(Q["lock_new_job"], {"id": job_id})).fetchone()
    return NewJob.model_validate(row) if row else None


async def lock_new_generation(conn: Conn, generation_id: UUID) -> NewGeneration | None:
    """The new generation, locked; None if it is not new or another dispatcher holds it."""
    row = await (await conn.execute(Q["lock_new_generation"], {"id": generation_id})).fetchone()
    return NewGeneration.model_validate(row) if row else None


async def lock_batch(conn: Conn, batch_id: UUID, wait_seconds: float) -> list[NewGeneration]:
    """Every row of the batch, locked, in prompt order; empty if another transaction is
    looking at the batch (it will act on it). ``waited_out`` says a row is older than
    ``wait_seconds``."""
    lock = await (await conn.execute(Q["lock_batch_assembly"], {"batch_id": batch_id})).fetchone()
    if lock is None or not lock["locked"]:
        return []
    rows = await (
        await conn.execute(Q["lock_batch"], {"batch_id": batch_id, "wait_seconds": wait_seconds})
    ).fetchall()
    return [NewGeneration.model_validate(r) for r in rows]


async def mark_job_dispatched(conn: Conn, job_id: UUID, workflow_id: str) -> None:
    """The job's workflow runs: record its id."""
    await conn.execute(Q["mark_job_dispatched"], {"id": job_id, "workflow_id": workflow_id})


async def mark_generation_dispatched(
    conn: Conn, generation_id: UUID, workflow_id: str, prompt_text: str
) -> None:
    """The generation's workflow runs: record its id and the prompt text it was given."""
    await conn.execute(
        Q["mark_generation_dispatched"],
        {"id": generation_id, "workflow_id": workflow_id, "prompt_text": prompt_text},
    )


async def lock_cancel(conn: Conn, entity: Entity, row_id: UUID) -> CancelRequest | None:
    """The row with an undelivered cancel request, locked; None if there is none (or
    another dispatcher is delivering it)."""
    query = Q["lock_job_cancel"] if entity == "jobs" else Q["lock_generation_cancel"]
    row = await (await conn.execute(query, {"id": row_id})).fetchone()
    return CancelRequest.model_validate(row) if row else None


async def mark_cancel_delivered(
    conn: Conn, entity: Entity, row_id: UUID, workflow_id: str | None
) -> None:
    """The cancel reached the workflow (or nothing was left to cancel)."""
    query = (
        Q["mark_job_cancel_delivered"]
        if entity == "jobs"
        else Q["mark_generation_cancel_delivered"]
    )
    await conn.execute(query, {"id": row_id, "workflow_id": workflow_id})


async def mark_batch_cancel_delivered(conn: Conn, batch_id: UUID) -> None:
    """Every row of a cancelled batch has had its cancel delivered."""
    await conn.execute(Q["mark_batch_cancel_delivered"], {"batch_id": batch_id})


async def undispatched(conn: Conn, limit: int) -> list[RowRef]:
    """New rows without a workflow, oldest first (for the sweep)."""
    rows = await (await conn.execute(Q["undispatched"], {"limit": limit})).fetchall()
    return [RowRef.model_validate(r) for r in rows]


async def cancels_undelivered(conn: Conn, limit: int) -> list[RowRef]:
    """Unfinished rows whose cancel request was not delivered (for the sweep)."""
    rows = await (await conn.execute(Q["cancels_undelivered"], {"limit": limit})).fetchall()
    return [RowRef.model_validate(r) for r in rows]


async def cancels_unfinished(conn: Conn, grace_seconds: float, limit: int) -> list[RowRef]:
    """Rows still unfinished ``grace_seconds`` after their cancel was delivered."""
    rows = await (
        await conn.execute(
            Q["cancels_unfinished"], {"grace_seconds": grace_seconds, "limit": limit}
        )
    ).fetchall()
    return [RowRef.model_validate(r) for r in rows]


async def generation_batch(conn: Conn, generation_id: UUID) -> BatchMembership | None:
    """The batch of a generation; None if there is no such generation."""
    row = await (await conn.execute(Q["generation_batch"], {"id": generation_id})).fetchone()
    return BatchMembership.model_validate(row) if row else None


async def listen(conn: AsyncConnection[Any]) -> None:
    """Subscribe this session to the dispatcher's notifications (``NOTIFY_CHANNEL``)."""
    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
