"""Approval gates: rows and one function per state transition."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from db.jobs import mark_job_running, mark_job_waiting_approval
from db.queries import load_queries
from db.transitions import NOW, Conn, RowNotFound, TransitionContext, transition

Q = load_queries("approvals")
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]
Channel = Literal["email", "link", "ui", "cli", "app"]


class ApprovalRow(BaseModel):
    """A row of ``approvals``."""

    id: UUID
    job_id: UUID | None
    action_type: str | None
    description: str | None
    screenshot_url: str | None
    status: ApprovalStatus
    resend_message_id: str | None
    email_message_id: str | None
    decided_at: datetime | None
    approver_email: str | None
    expires_at: datetime | None
    decided_by: str | None
    decision_channel: Channel | None
    decision_note: str | None
    reminder_sent_at: datetime | None
    delivery_status: str | None
    step_index: int | None
    temporal_workflow_id: str | None
    created_at: datetime
    quorum: int = 1  # distinct approvals that decide it (issue 27)


async def open_approval(
    conn: Conn,
    *,
    approval_id: UUID,
    job_id: UUID,
    action_type: str,
    description: str,
    screenshot_url: str | None,
    approver_email: str | None,
    expires_at: datetime,
    step_index: int | None,
    workflow_id: str,
    ctx: TransitionContext,
) -> ApprovalRow:
    """Persist a pending approval and move its job to waiting_approval, in one transaction."""
    async with conn.transaction():
        await conn.execute(
            Q["insert_approval"],
            {
                "id": approval_id,
                "job_id": job_id,
                "action_type": action_type,
                "description": description,
                "screenshot_url": screenshot_url,
                "approver_email": approver_email,
                "expires_at": expires_at,
                "step_index": step_index,
                "temporal_workflow_id": workflow_id,
            },
        )
        approval = await get_approval(conn, approval_id)
        if approval.status == "pending":
            await mark_job_waiting_approval(conn, job_id, ctx)
    return approval


async def get_approval(conn: Conn, approval_id: UUID) -> ApprovalRow:
    """The approval row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_approval"], {"id": approval_id})).fetchone()
    if row is None:
        raise RowNotFound("approvals", approval_id)
    return ApprovalRow.model_validate(row)


async def list_approvals(
    conn: Conn, *, status: str | None = None, limit: int = 50, org_id: UUID | None = None
) -> list[ApprovalRow]:
    """Pending approvals first, then the newest (of one organization, if given)."""
    params = {"status": status, "limit": limit, "org_id": org_id}
    rows = await (await conn.execute(Q["list_approvals"], params)).fetchall()
    return [ApprovalRow.model_validate(r) for r in rows]


async def record_approval_decision(
    conn: Conn,
    approval_id: UUID,
    ctx: TransitionContext,
    *,
    approved: bool,
    decided_by: str,
    channel: Channel,
    note: str | None,
) -> ApprovalRow:
    """pending → approved/rejected with who, how and why; the job resumes (running)."""
    async with conn.transaction():
        row = await transition(
            conn,
            table="approvals",
            entity_id=approval_id,
            to_status="approved" if approved else "rejected",
            from_statuses=["pending"],
            ctx=ctx,
            values={
                "decided_at": NOW,
                "decided_by": decided_by,
                "decision_channel": channel,
                "decision_note": note,
            },
        )
        await mark_job_running(conn, row["job_id"], ctx)
    return ApprovalRow.model_validate(row)


async def close_approval(
    conn: Conn,
    approval_id: UUID,
    ctx: TransitionContext,
    *,
    status: Literal["expired", "cancelled"],
    resume_job: bool,
    reason: str | None = None,
) -> ApprovalRow:
    """pending → expired (deadline passed) or cancelled (job cancelled, or the gate could not
    be run); ``reason`` goes to ``decision_note``, since nobody decided."""
    values: dict[str, object] = {"decided_at": NOW}
    if reason is not None:
        values["decision_note"] = reason
    async with conn.transaction():
        row = await transition(
            conn,
            table="approvals",
            entity_id=approval_id,
            to_status=status,
            from_statuses=["pending"],
            ctx=ctx,
            values=values,
        )
        if resume_job:
            await mark_job_running(conn, row["job_id"], ctx)
    return ApprovalRow.model_validate(row)


async def record_request_email(
    conn: Conn, approval_id: UUID, *, resend_message_id: str, email_message_id: str
) -> ApprovalRow:
    """Keep the ids of the request email; the job's thread starts at its first one."""
    async with conn.transaction():
        row = await (
            await conn.execute(
                Q["record_request_email"],
                {
                    "id": approval_id,
                    "resend_message_id": resend_message_id,
                    "email_message_id": email_message_id,
                },
            )
        ).fetchone()
        if row is None:
            raise RowNotFound("approvals", approval_id)
        thread = await job_thread(conn, row["job_id"], approval_id)
        await conn.execute(
            Q["set_job_thread"],
            {"job_id": row["job_id"], "thread_id": (thread or [email_message_id])[0]},
        )
    return ApprovalRow.model_validate(row)


async def job_thread(conn: Conn, job_id: UUID, approval_id: UUID) -> list[str]:
    """Message-IDs of the job's earlier approval emails, oldest first."""
    rows = await (
        await conn.execute(Q["job_thread"], {"job_id": job_id, "id": approval_id})
    ).fetchall()
    return [str(r["email_message_id"]) for r in rows]


async def record_reminder(conn: Conn, approval_id: UUID) -> None:
    """Note that the reminder left."""
    await conn.execute(Q["record_reminder"], {"id": approval_id})


async def record_delivery_event(
    conn: Conn, *, resend_message_id: str, approval_id: UUID | None, delivery_status: str
) -> ApprovalRow | None:
    """A bounce/complaint about an approval email, found by its Resend id or by the approval
    it was tagged with (the id may not be recorded yet); None if it is not one of ours."""
    row = await (
        await conn.execute(
            Q["record_delivery_event"],
            {
                "resend_message_id": resend_message_id,
                "approval_id": approval_id,
                "delivery_status": delivery_status,
            },
        )
    ).fetchone()
    return ApprovalRow.model_validate(row) if row else None


class EmailContext(BaseModel):
    """Everything an approval's email says: the gate, its job, platform and owner."""

    id: UUID
    job_id: UUID
    action_type: str | None
    description: str | None
    screenshot_url: str | None
    status: ApprovalStatus
    approver_email: str | None
    expires_at: datetime
    resend_message_id: str | None
    email_message_id: str | None
    job_title: str | None
    platform: str
    owner_name: str | None


class DecisionContext(ApprovalRow):
    """Everything the decision page shows: the gate, its job, platform and the person the
    assistant works for."""

    job_title: str | None
    platform: str | None
    owner_name: str | None
    owner_email: str | None


async def email_context(conn: Conn, approval_id: UUID) -> EmailContext | None:
    """What the approval's email says; None if there is no such approval."""
    row = await (await conn.execute(Q["email_context"], {"id": approval_id})).fetchone()
    return EmailContext.model_validate(row) if row else None


async def decision_context(conn: Conn, approval_id: UUID) -> DecisionContext | None:
    """What the decision page shows of an approval; None if there is no such approval."""
    row = await (await conn.execute(Q["decision_context"], {"id": approval_id})).fetchone()
    return DecisionContext.model_validate(row) if row else None
