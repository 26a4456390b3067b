"""Jobs and their steps: rows and one function per state transition."""

from __future__ import annotations

from collections.abc import Sequence
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
    org_id: UUID | None = None,
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
            "org_id": org_id,
        },
    )
    return await get_job(conn, job_id)


async def is_org_member(conn: Conn, org_id: UUID, user_id: UUID) -> bool:
    """Whether ``user_id`` is a member of organization ``org_id``."""
    row = await (
        await conn.execute(Q["is_org_member"], {"org_id": org_id, "user_id": user_id})
    ).fetchone()
    return bool(row and row["member"])


async def get_job(conn: Conn, job_id: UUID) -> JobRow:
    """The job row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_job"], {"id": job_id})).fetchone()
    if row is None:
        raise RowNotFound("jobs", job_id)
    return JobRow.model_validate(row)


async def list_jobs(
    conn: Conn, *, status: str | None = None, limit: int = 50, org_id: UUID | None = None
) -> list[JobRow]:
    """Most recent jobs first (of one organization, if given)."""
    params = {"status": status, "limit": limit, "org_id": org_id}
    rows = await (await conn.execute(Q["list_jobs"], params)).fetchall()
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
    return await _end_job(conn, job_id, ctx, "failed", error_message, result)


async def mark_job_cancelled(
    conn: Conn,
    job_id: UUID,
    ctx: TransitionContext,
    *,
    reason: str,
    result: dict[str, Any] | None = None,
) -> JobRow:
    """pending/running/waiting_approval → cancelled (operator cancel or rejected step)."""
    return await _end_job(conn, job_id, ctx, "cancelled", reason, result)


async def _end_job(
    conn: Conn,
    job_id: UUID,
    ctx: TransitionContext,
    status: Literal["failed", "cancelled"],
    why: str,
    result: dict[str, Any] | None,
) -> JobRow:
    values: dict[str, object] = {"error_message": why, "completed_at": NOW}
    if result is not None:
        values["result"] = Jsonb(result)
    row = await transition(
        conn,
        table="jobs",
        entity_id=job_id,
        to_status=status,
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


class JobContext(BaseModel):
    """The user a new job runs for and the workspace it names (absent: not theirs)."""

    user_id: UUID
    workspace_id: UUID | None
    platform_name: str | None
    browser_settings: dict[str, Any] | None
    is_active: bool | None


class PlannedStep(BaseModel):
    """A step of a job's plan as its row records it before it runs."""

    description: str
    action: dict[str, Any]
    risk: str


async def job_context(conn: Conn, user_id: UUID, workspace_id: UUID) -> JobContext | None:
    """The user and their workspace for a new job; None if the user has no profile."""
    row = await (
        await conn.execute(Q["job_context"], {"user_id": user_id, "workspace_id": workspace_id})
    ).fetchone()
    return JobContext.model_validate(row) if row else None


async def insert_steps(
    conn: Conn, job_id: UUID, first_index: int, steps: Sequence[PlannedStep]
) -> None:
    """Record the steps numbered from ``first_index`` once each (a retry writes nothing)."""
    async with conn.cursor() as cur:
        await cur.executemany(
            Q["upsert_job_step"],
            [
                {
                    "job_id": job_id,
                    "step_index": first_index + offset,
                    "description": step.description,
                    "action": Jsonb(step.action),
                    "risk": step.risk,
                }
                for offset, step in enumerate(steps)
            ],
        )


async def get_step(conn: Conn, job_id: UUID, step_index: int) -> JobStepRow | None:
    """One step of a job; None if it has no such step."""
    row = await (
        await conn.execute(Q["get_step"], {"job_id": job_id, "step_index": step_index})
    ).fetchone()
    return JobStepRow.model_validate(row) if row else None


async def list_steps(conn: Conn, job_id: UUID) -> list[JobStepRow]:
    """Every step of a job in plan order."""
    rows = await (await conn.execute(Q["list_steps"], {"job_id": job_id})).fetchall()
    return [JobStepRow.model_validate(r) for r in rows]


async def mark_step_running(conn: Conn, job_id: UUID, step_index: int) -> None:
    """A step starts (or starts again after a crash); a finished step stays as it is."""
    await conn.execute(Q["mark_step_running"], {"job_id": job_id, "step_index": step_index})


async def finish_step(
    conn: Conn,
    job_id: UUID,
    step_index: int,
    *,
    status: Literal["completed", "failed", "skipped"],
    result: dict[str, Any] | None,
    screenshot_ref: str | None,
    error: str | None,
) -> None:
    """A step that is still open ends: completed, failed or skipped (a finished one stays)."""
    await conn.execute(
        Q["finish_step"],
        {
            "job_id": job_id,
            "step_index": step_index,
            "status": status,
            "result": None if result is None else Jsonb(result),
            "screenshot_ref": screenshot_ref,
            "error": error,
        },
    )


async def reserve_browser_session(conn: Conn, job_id: UUID, session_id: str) -> str:
    """The job's browser session id: the first one reserved, which a retry finds again."""
    row = await (
        await conn.execute(Q["reserve_browser_session"], {"id": job_id, "session_id": session_id})
    ).fetchone()
    if row is None:
        raise RowNotFound("jobs", job_id)
    return str(row["steel_session_id"])


async def replace_browser_session(conn: Conn, job_id: UUID, session_id: str) -> None:
    """The job's session ended: ``session_id`` replaces it (its live view is not known yet)."""
    await conn.execute(Q["replace_browser_session"], {"id": job_id, "session_id": session_id})


async def set_session_viewer(
    conn: Conn, job_id: UUID, session_id: str, viewer_url: str | None
) -> None:
    """The live view of the job's session, if it is still the job's session."""
    await conn.execute(
        Q["set_session_viewer"],
        {"id": job_id, "session_id": session_id, "viewer_url": viewer_url},
    )
