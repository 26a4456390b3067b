"""Database transitions of approval gates (run as local activities: short and idempotent)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from temporalio import activity

from activities.context import transition_context
from db import approvals
from db.approvals import Channel
from db.pool import Pool
from db.transitions import InvalidTransition

DECIDED = ("approved", "rejected")


class OpenApprovalInput(BaseModel):
    """A gate to open for a job."""

    approval_id: UUID
    job_id: UUID
    action_type: str
    description: str
    screenshot_blob_id: UUID | None
    approver_email: str | None = None
    expires_at: datetime
    step_index: int | None = None


class RecordDecisionInput(BaseModel):
    """A decision accepted by the workflow's update validator."""

    approval_id: UUID
    approved: bool
    decided_by: str
    channel: Channel
    note: str | None = None


class CloseApprovalInput(BaseModel):
    """A gate that ends without a decision."""

    approval_id: UUID
    status: Literal["expired", "cancelled"]
    resume_job: bool
    reason: str | None = None  # why it closed (kept in decision_note)
    # A decision already recorded on the row stands and is returned: its update was
    # accepted and persisted by the gate, then lost with a failed workflow task.
    keep_recorded_decision: bool = False


class ApprovalRecord(BaseModel):
    """What the workflow keeps of a persisted approval."""

    approval_id: UUID
    status: str
    decided_at: datetime | None = None
    decided_by: str | None = None  # set when a recorded decision is returned on close
    note: str | None = None


class ApprovalActivities:
    """Approval-gate transitions on the ``approvals`` and ``jobs`` rows."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def open_approval(self, request: OpenApprovalInput) -> ApprovalRecord:
        """Persist the pending approval and move the job to waiting_approval."""
        screenshot = f"blob:{request.screenshot_blob_id}" if request.screenshot_blob_id else None
        async with self.pool.connection() as conn:
            row = await approvals.open_approval(
                conn,
                approval_id=request.approval_id,
                job_id=request.job_id,
                action_type=request.action_type,
                description=request.description,
                screenshot_url=screenshot,
                approver_email=request.approver_email,
                expires_at=request.expires_at,
                step_index=request.step_index,
                workflow_id=activity.info().workflow_id or "",
                ctx=transition_context(f"approval gate opened: {request.action_type}"),
            )
        return ApprovalRecord(approval_id=row.id, status=row.status)

    @activity.defn
    async def record_approval_decision(self, request: RecordDecisionInput) -> ApprovalRecord:
        """Persist the decision; the job resumes to act on it."""
        verb = "approved" if request.approved else "rejected"
        async with self.pool.connection() as conn:
            row = await approvals.record_approval_decision(
                conn,
                request.approval_id,
                transition_context(f"{verb} by {request.channel}"),
                approved=request.approved,
                decided_by=request.decided_by,
                channel=request.channel,
                note=request.note,
            )
        return ApprovalRecord(approval_id=row.id, status=row.status, decided_at=row.decided_at)

    @activity.defn
    async def close_approval(self, request: CloseApprovalInput) -> ApprovalRecord:
        """Expire or cancel a gate nobody decided."""
        async with self.pool.connection() as conn:
            try:
                row = await approvals.close_approval(
                    conn,
                    request.approval_id,
                    transition_context(request.reason or f"approval {request.status}"),
                    status=request.status,
                    resume_job=request.resume_job,
                    reason=request.reason,
                )
            except InvalidTransition:
                row = await approvals.get_approval(conn, request.approval_id)
                if not request.keep_recorded_decision or row.status not in DECIDED:
                    raise
                activity.logger.warning(
                    "approval decided in the database but not in its workflow: the recorded"
                    " decision stands",
                    extra={"approval_id": str(row.id), "status": row.status},
                )
                return ApprovalRecord(
                    approval_id=row.id,
                    status=row.status,
                    decided_at=row.decided_at,
                    decided_by=row.decided_by,
                    note=row.decision_note,
                )
        return ApprovalRecord(approval_id=row.id, status=row.status, decided_at=row.decided_at)
