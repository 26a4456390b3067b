"""Jobs and their steps: rows and one function per state transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import NOW, Conn, RowNotFound, TransitionContext, transition

Q = load_queries("jobs")
_FIRST_START = sql.SQL("coalesce(started_at, now())")  # a resumed job keeps its start
JobStatus = Literal["pending", "running", "waiting_approval", "completed", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]


class JobRow(BaseModel):
    """A row of ``jobs``."""

    id: UUID
    user_id: UUID | None
    workspace_id: UUID | None
    temporal_workflow_id: str | None
    status: JobStatus
    title: str | None
    instruction: str | None
    last_resend_thread_id: str | None
    steel_session_id: str | None
    steel_session_viewer_url: str | None
    error_message: str | None
    result: dict[str, Any] | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime


class JobStepRow(BaseModel):
    """A row of ``job_steps``."""

    job_id: UUID
    step_index: int
    description: str
    action: dict[str, Any]
    risk: str
    status: StepStatus
    result: dict[str, Any] | None
    screenshot_ref: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


async def insert_job(
    conn: Conn,
    *,
    job_id: UUID,
    user_id: UUID,
    workspace_id: UUID | None,
    workflow_id: str,
    title: str,
    instruction: str,
) -> JobRow:
    """Create the job (status pending) if it does not exist; return it either way."""
    await conn.execute(
        Q["insert_job"],
        {
            "id": job_id,
            "user_id": user_id,
            "workspace_id": workspace_id,
            "temporal_workflow_id": workflow_id,
            "title": title,
            "instruction": instruction,
        },
    )
    return await get_job(conn, job_id)


async def get_job(conn: Conn, job_id: UUID) -> JobRow:
    """The job row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_job"], {"id": job_id})).fetchone()
    if row is None:
        raise RowNotFound("jobs", job_id)
    return JobRow.model_validate(row)


async def list_jobs(conn: Conn, *, status: str | None = None, limit: int = 50) -> list[JobRow]:
    """Most recent jobs first."""
    rows = await (await conn.execute(Q["list_jobs"], {"status": status, "limit": limit})).fetchall()
    return [JobRow.model_validate(r) for r in rows]


async def mark_job_running(
    conn: Conn, job_id: UUID, ctx: TransitionContext, *, steel_session_id: str | None = None
) -> JobRow:
    """pending → running (first start) or waiting_approval → running (gate passed)."""
    values: dict[str, object] = {"started_at": _FIRST_START}
    if steel_session_id is not None:
        values["steel_session_id"] = steel_session_id
    row = await transition(
        conn,
        table="jobs",
        entity_id=job_id,
        to_status="running",
        from_statuses=["pending", "waiting_approval"],
        ctx=ctx,
        values=values,
    )
    return JobRow.model_validate(row)


async def mark_job_waiting_approval(conn: Conn, job_id: UUID, ctx: TransitionContext) -> JobRow:
    """running → waiting_approval: an approval gate is open."""
    row = await transition(
        conn,
        table="jobs",
        entity_id=job_id,
        to_status="waiting_approval",
        from_statuses=["running"],
        ctx=ctx,
    )
    return JobRow.model_validate(row)


async def mark_job_completed(
    conn: Conn, job_id: UUID, ctx: TransitionContext, *, result: dict[str, Any]
) -> JobRow:
    """running → completed, with the job's result."""
    row = await transition(
        conn,
        table="jobs",
        entity_id=job_id,
        to_status="completed",
        from_statuses=["running"],
        ctx=ctx,
        values={"result": Jsonb(result), "completed_at": NOW},
    )
    return JobRow.model_validate(row)


async def mark_job_failed(
    conn: Conn,
    job_id: UUID,
    ctx: TransitionContext,
    *,
    error_message: str,
    result: dict[str, Any] | None = None,
) -> JobRow:
    """pending/running/waiting_approval → failed, with the reason (and what was done)."""
    values: dict[str, object] = {"error_message": error_message, "completed_at": NOW}
    if result is not None:
        values["result"] = Jsonb(result)
    row = await transition(
        conn,
        table="jobs",
        entity_id=job_id,
        to_status="failed",
        from_statuses=["pending", "running", "waiting_approval"],
        ctx=ctx,
        values=values,
    )
    return JobRow.model_validate(row)


async def mark_job_cancelled(
    conn: Conn,
    job_id: UUID,
    ctx: TransitionContext,
    *,
    reason: str,
    result: dict[str, Any] | None = None,
) -> JobRow:
    """pending/running/waiting_approval → cancelled (operator cancel or rejected step)."""
    values: dict[str, object] = {"error_message": reason, "completed_at": NOW}
    if result is not None:
        values["result"] = Jsonb(result)
    row = await transition(
        conn,
        table="jobs",
        entity_id=job_id,
        to_status="cancelled",
        from_statuses=["pending", "running", "waiting_approval"],
        ctx=ctx,
        values=values,
    )
    return JobRow.model_validate(row)


async def close_open_steps(conn: Conn, job_id: UUID, reason: str) -> int:
    """End the steps a finished job left open: pending ones skipped, a running one failed,
    each with ``reason``. Returns how many it closed (none on a retry)."""
    cur = await conn.execute(Q["close_open_steps"], {"job_id": job_id, "reason": reason})
    return cur.rowcount
