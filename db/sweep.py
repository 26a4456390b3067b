"""Rows whose workflow ended without closing them (terminated, timed out): found and closed.

Every close is a compare-and-set from an open status, so running the sweep again, or
while the owning workflow closes the row itself, changes nothing twice.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from db import approvals, generations, jobs, metrics, notifications
from db.queries import load_queries
from db.transitions import Conn, InvalidTransition, RowNotFound, TransitionContext

Q = load_queries("sweep")
Entity = Literal[
    "jobs", "approvals", "job_steps", "generations", "metric_sync_logs", "notification_queue"
]
# A job first: closing it closes its steps and gates too.
ORDER: dict[str, int] = {
    "jobs": 0,
    "approvals": 1,
    "job_steps": 2,
    "generations": 3,
    "metric_sync_logs": 4,
    "notification_queue": 5,
}


class OpenRow(BaseModel):
    """A row not in a final state and the workflow run that should close it."""

    entity: Entity
    id: UUID  # for job_steps: the job's id
    workflow_id: str
    run_id: str | None = None  # sync logs: one row per run of a reused workflow id


async def open_rows(conn: Conn) -> list[OpenRow]:
    """Every open row that names its workflow, jobs first."""
    rows = await (await conn.execute(Q["open_rows"])).fetchall()
    found = [OpenRow.model_validate(r) for r in rows]
    return sorted(found, key=lambda r: ORDER[r.entity])


async def close_row(conn: Conn, row: OpenRow, reason: str, ctx: TransitionContext) -> bool:
    """Close ``row`` as its workflow's end requires; False if it was closed meanwhile."""
    try:
        async with conn.transaction():
            if row.entity == "jobs":
                await jobs.mark_job_failed(conn, row.id, ctx, error_message=reason)
                await _close_job_gates(conn, row.id, reason, ctx)
                await jobs.close_open_steps(conn, row.id, reason)
            elif row.entity == "approvals":
                await _close_gate(conn, row.id, reason, ctx)
            elif row.entity == "job_steps":
                return await jobs.close_open_steps(conn, row.id, reason) > 0
            elif row.entity == "generations":
                values: dict[str, object] = {"error_message": reason}
                await generations.move(conn, row.id, "failed", ctx, values=values)
            elif row.entity == "notification_queue":
                return await notifications.abandon_delivery(conn, row.id, reason)
            else:
                await metrics.abandon_sync_log(conn, row.id, ctx, reason=reason)
    except (InvalidTransition, RowNotFound):
        return False  # its workflow (or another sweep) closed it first, or it was deleted
    return True


async def _close_job_gates(conn: Conn, job_id: UUID, reason: str, ctx: TransitionContext) -> None:
    gates = await (await conn.execute(Q["pending_approvals_of_job"], {"job_id": job_id})).fetchall()
    for gate in gates:
        await _close_gate(conn, gate["id"], reason, ctx)


async def _close_gate(conn: Conn, approval_id: UUID, reason: str, ctx: TransitionContext) -> None:
    await approvals.close_approval(
        conn, approval_id, ctx, status="cancelled", resume_job=False, reason=reason
    )
