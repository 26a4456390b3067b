"""Database transitions of approval gates (run as local activities: short and idempotent)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from temporalio import activity

from activities.context import transition_context
from db import approval_teams, approvals
from db.approval_teams import ApproverRow, DelegationRefused, EscalationCause
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


class ApproverSeat(BaseModel):
    """One person asked to decide a gate (their seat numbers their emails)."""

    seat: int
    email: str

    @classmethod
    def of(cls, row: ApproverRow) -> ApproverSeat:
        """The seat of an ``approval_approvers`` row."""
        return cls(seat=row.seat, email=row.email)


class OpenTeamApprovalInput(OpenApprovalInput):
    """A gate to open and resolve its approvers for (issue 27)."""

    escalate_after: timedelta | None = None


class GatePlanRecord(BaseModel):
    """Who decides the gate and how."""

    approval_id: UUID
    approvers: list[ApproverSeat]
    quorum: int
    escalate_after: timedelta | None


class EscalateInput(BaseModel):
    """The gate's escalation ``number``, and why."""

    approval_id: UUID
    number: int
    cause: EscalationCause
    reason: str


class EscalationRecord(BaseModel):
    """Whom the escalation asked (nobody: no one was left to ask)."""

    number: int
    tier: str
    asked: list[ApproverSeat]


class VoteInput(BaseModel):
    """One approver's vote, accepted by the workflow; ``final`` when it decides the gate."""

    approval_id: UUID
    voter: str
    approved: bool
    channel: Channel
    note: str | None = None
    final: bool


class DelegateInput(BaseModel):
    """An approver hands their decision to a colleague."""

    approval_id: UUID
    delegated_by: str
    delegate_to: str


class DelegateRecord(BaseModel):
    """The delegate's seat, or why the delegation was refused."""

    seat: ApproverSeat | None = None
    refused: str | None = None


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

    @activity.defn
    async def open_team_approval(self, request: OpenTeamApprovalInput) -> GatePlanRecord:
        """Persist the pending approval and resolve who decides it (its organization's
        route for the action type, else the job's owner or the policy's approver), in one
        transaction: nobody sees the gate before its approvers and quorum."""
        screenshot = f"blob:{request.screenshot_blob_id}" if request.screenshot_blob_id else None
        async with self.pool.connection() as conn, conn.transaction():
            await approvals.open_approval(
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
            plan = await approval_teams.plan_gate(
                conn, request.approval_id, escalate_after=request.escalate_after
            )
        return GatePlanRecord(
            approval_id=request.approval_id,
            approvers=[ApproverSeat.of(a) for a in plan.approvers if a.withdrawn_at is None],
            quorum=plan.quorum,
            escalate_after=plan.escalate_after,
        )

    @activity.defn
    async def escalate_approval(self, request: EscalateInput) -> EscalationRecord:
        """Escalate a gate: ask the next approvers (backups, then admins) and record the
        ``approval_escalated`` event. The one place an escalation happens: notifications
        (issue 27 §3) hang off the ``approval_escalations`` row it writes."""
        async with self.pool.connection() as conn:
            record, asked = await approval_teams.escalate(
                conn,
                request.approval_id,
                number=request.number,
                cause=request.cause,
                reason=request.reason,
            )
        activity.logger.info(
            "approval escalated",
            extra={
                "approval_id": str(request.approval_id),
                "number": record.number,
                "cause": record.cause,
                "tier": record.tier,
                "asked": len(asked),
            },
        )
        return EscalationRecord(
            number=record.number, tier=record.tier, asked=[ApproverSeat.of(a) for a in asked]
        )

    @activity.defn
    async def record_approval_vote(self, request: VoteInput) -> ApprovalRecord:
        """Keep a vote; when it decides the gate, persist the decision and resume the job."""
        verb = "approve" if request.approved else "reject"
        async with self.pool.connection() as conn:
            row = await approval_teams.record_vote(
                conn,
                request.approval_id,
                transition_context(f"{verb} by {request.channel}"),
                voter=request.voter,
                approved=request.approved,
                channel=request.channel,
                note=request.note,
                final=request.final,
            )
        return ApprovalRecord(approval_id=row.id, status=row.status, decided_at=row.decided_at)

    @activity.defn
    async def delegate_approval(self, request: DelegateInput) -> DelegateRecord:
        """Hand an approver's seat to a colleague, or say why not."""
        async with self.pool.connection() as conn:
            try:
                row = await approval_teams.delegate(
                    conn,
                    request.approval_id,
                    delegated_by=request.delegated_by,
                    delegate_to=request.delegate_to,
                )
            except DelegationRefused as refused:
                return DelegateRecord(refused=str(refused))
        return DelegateRecord(seat=ApproverSeat.of(row))
