"""Approvals decided by a team: who is asked (route, escalation, delegation), their votes
and the escalations, each a function over named queries; every change is idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from db.approvals import ApprovalRow, Channel, record_approval_decision
from db.queries import load_queries
from db.transitions import Conn, RowNotFound, TransitionContext

Q = load_queries("approval_teams")
AskedBecause = Literal["owner", "route", "escalation", "delegation"]
EscalationCause = Literal["bounced", "complained", "no_decision"]


class ApproverRow(BaseModel):
    """A row of ``approval_approvers``: one person asked to decide."""

    approval_id: UUID
    seat: int
    org_id: UUID | None
    email: str
    user_id: UUID | None
    asked_because: AskedBecause
    escalation: int | None
    delegated_from: str | None
    withdrawn_at: datetime | None
    resend_message_id: str | None
    email_message_id: str | None
    delivery_status: str | None


class VoteRow(BaseModel):
    """A row of ``approval_votes``."""

    approval_id: UUID
    voter: str
    decision: Literal["approve", "reject"]
    channel: Channel
    note: str | None
    voted_at: datetime


class EscalationRow(BaseModel):
    """A row of ``approval_escalations`` (event ``approval_escalated``)."""

    approval_id: UUID
    number: int
    org_id: UUID | None
    event: str
    cause: EscalationCause
    reason: str
    tier: Literal["backup", "admin", "none"]
    asked: list[str]
    created_at: datetime


class GatePlan(BaseModel):
    """Who decides a gate and how: its approvers, the quorum, when to escalate."""

    approvers: list[ApproverRow]
    quorum: int
    escalate_after: timedelta | None


async def _lock(conn: Conn, approval_id: UUID) -> ApprovalRow:
    row = await (await conn.execute(Q["lock_approval"], {"id": approval_id})).fetchone()
    if row is None:
        raise RowNotFound("approvals", approval_id)
    return ApprovalRow.model_validate(row)


async def list_approvers(conn: Conn, approval_id: UUID) -> list[ApproverRow]:
    """Everyone asked to decide, by seat."""
    rows = await (await conn.execute(Q["list_approvers"], {"id": approval_id})).fetchall()
    return [ApproverRow.model_validate(r) for r in rows]


async def get_approver(conn: Conn, approval_id: UUID, seat: int) -> ApproverRow | None:
    """One seat of an approval."""
    row = await (
        await conn.execute(Q["get_approver"], {"id": approval_id, "seat": seat})
    ).fetchone()
    return ApproverRow.model_validate(row) if row else None


async def _ask(
    conn: Conn,
    approval_id: UUID,
    email: str,
    user_id: UUID | None,
    because: AskedBecause,
    *,
    escalation: int | None = None,
    delegated_from: str | None = None,
) -> ApproverRow | None:
    row = await (
        await conn.execute(
            Q["insert_approver"],
            {
                "id": approval_id,
                "email": email.strip().lower(),
                "user_id": user_id,
                "asked_because": because,
                "escalation": escalation,
                "delegated_from": delegated_from,
            },
        )
    ).fetchone()
    return ApproverRow.model_validate(row) if row else None


async def plan_gate(conn: Conn, approval_id: UUID, *, escalate_after: timedelta | None) -> GatePlan:
    """Resolve a just-opened gate's approvers once: the route of its organization for its
    action type (the members in its roles, its quorum, its escalation time), else the
    approver already on the row (the job's owner, or the policy's address). A retry finds
    the approvers it resolved."""
    async with conn.transaction():
        approval = await _lock(conn, approval_id)
        existing = await list_approvers(conn, approval_id)
        route = await (await conn.execute(Q["approval_route"], {"id": approval_id})).fetchone()
        after = escalate_after
        if route and route["escalate_after_seconds"]:
            after = timedelta(seconds=route["escalate_after_seconds"])
        if existing:
            return GatePlan(approvers=existing, quorum=approval.quorum, escalate_after=after)
        quorum = 1
        if route is not None:
            quorum = int(route["quorum"])
            members = await (
                await conn.execute(
                    Q["route_members"], {"id": approval_id, "roles": route["approver_roles"]}
                )
            ).fetchall()
            for member in members:
                await _ask(conn, approval_id, member["email"], member["user_id"], "route")
        elif approval.approver_email:
            owner = await (await conn.execute(Q["approval_owner"], {"id": approval_id})).fetchone()
            user_id = owner["user_id"] if owner else None
            await _ask(conn, approval_id, approval.approver_email, user_id, "owner")
        approvers = await list_approvers(conn, approval_id)
        await conn.execute(
            Q["set_gate_plan"],
            {
                "id": approval_id,
                "approver_email": approvers[0].email if approvers else None,
                "quorum": quorum,
            },
        )
    return GatePlan(approvers=approvers, quorum=quorum, escalate_after=after)


async def escalate(
    conn: Conn, approval_id: UUID, *, number: int, cause: EscalationCause, reason: str
) -> tuple[EscalationRow, list[ApproverRow]]:
    """Escalation ``number`` of a gate: ask the backup approvers not asked yet, else the
    admins not asked yet, and record it (event ``approval_escalated``, also when nobody is
    left to ask). A retry returns what the first run recorded."""
    async with conn.transaction():
        await _lock(conn, approval_id)
        found = await (
            await conn.execute(Q["get_escalation"], {"id": approval_id, "number": number})
        ).fetchone()
        if found is not None:
            done = EscalationRow.model_validate(found)
            asked = [a for a in await list_approvers(conn, approval_id) if a.escalation == number]
            return done, asked
        candidates = await (
            await conn.execute(Q["escalation_candidates"], {"id": approval_id})
        ).fetchall()
        tier = candidates[0]["tier"] if candidates else "none"
        asked = []
        for person in candidates:
            if person["tier"] != tier:
                break
            row = await _ask(
                conn, approval_id, person["email"], person["user_id"], "escalation",
                escalation=number,
            )  # fmt: skip
            if row is not None:
                asked.append(row)
        record = await (
            await conn.execute(
                Q["insert_escalation"],
                {
                    "id": approval_id,
                    "number": number,
                    "cause": cause,
                    "reason": reason,
                    "tier": tier,
                    "asked": [a.email for a in asked],
                },
            )
        ).fetchone()
        if record is None:
            raise RowNotFound("approvals", approval_id)
    return EscalationRow.model_validate(record), asked


async def list_escalations(conn: Conn, approval_id: UUID) -> list[EscalationRow]:
    """A gate's escalations, oldest first."""
    rows = await (await conn.execute(Q["list_escalations"], {"id": approval_id})).fetchall()
    return [EscalationRow.model_validate(r) for r in rows]


class DelegationRefused(Exception):
    """The decision cannot be handed to that person; the message says why."""


async def delegate(
    conn: Conn, approval_id: UUID, *, delegated_by: str, delegate_to: str
) -> ApproverRow:
    """Hand ``delegated_by``'s seat to ``delegate_to``, a member of the approval's
    organization in a role its route allows; ``DelegationRefused`` otherwise. A retry
    returns the seat it made."""
    by, to = delegated_by.strip().lower(), delegate_to.strip().lower()
    async with conn.transaction():
        await _lock(conn, approval_id)
        approvers = {a.email: a for a in await list_approvers(conn, approval_id)}
        made = approvers.get(to)
        if made is not None and made.delegated_from == by:
            return made
        if to == by:
            raise DelegationRefused("an approver cannot delegate to themselves")
        holder = approvers.get(by)
        if holder is None or holder.withdrawn_at is not None:
            raise DelegationRefused(f"{by} is not an approver of this request")
        if made is not None:
            raise DelegationRefused(f"{to} is already asked to decide this request")
        member = await (
            await conn.execute(Q["member_by_email"], {"id": approval_id, "email": to})
        ).fetchone()
        if member is None:
            raise DelegationRefused(f"{to} is not a member of this organization")
        route = await (await conn.execute(Q["approval_route"], {"id": approval_id})).fetchone()
        if route is not None and member["role"] not in route["approver_roles"]:
            allowed = " or ".join(route["approver_roles"])
            raise DelegationRefused(f"{to} is a {member['role']}; this needs a {allowed}")
        await conn.execute(Q["withdraw_approver"], {"id": approval_id, "email": by})
        row = await _ask(conn, approval_id, to, member["user_id"], "delegation", delegated_from=by)
        if row is None:
            raise RowNotFound("approvals", approval_id)
    return row


async def record_vote(
    conn: Conn,
    approval_id: UUID,
    ctx: TransitionContext,
    *,
    voter: str,
    approved: bool,
    channel: Channel,
    note: str | None,
    final: bool,
) -> ApprovalRow:
    """Keep a vote (the first per voter stands); when it decides the gate, the approval
    moves to approved or rejected and the job resumes, in the same transaction."""
    async with conn.transaction():
        await conn.execute(
            Q["insert_vote"],
            {
                "id": approval_id,
                "voter": voter.strip().lower(),
                "decision": "approve" if approved else "reject",
                "channel": channel,
                "note": note,
            },
        )
        if final:
            return await record_approval_decision(
                conn,
                approval_id,
                ctx,
                approved=approved,
                decided_by=voter,
                channel=channel,
                note=note,
            )
        return await _lock(conn, approval_id)


async def list_votes(conn: Conn, approval_id: UUID) -> list[VoteRow]:
    """A gate's votes, in the order they came."""
    rows = await (await conn.execute(Q["list_votes"], {"id": approval_id})).fetchall()
    return [VoteRow.model_validate(r) for r in rows]


async def record_approver_email(
    conn: Conn, approval_id: UUID, seat: int, *, resend_message_id: str, email_message_id: str
) -> None:
    """Keep the ids of the request email to one approver."""
    await conn.execute(
        Q["record_approver_email"],
        {
            "id": approval_id,
            "seat": seat,
            "resend_message_id": resend_message_id,
            "email_message_id": email_message_id,
        },
    )


async def record_approver_reminder(conn: Conn, approval_id: UUID, seat: int) -> None:
    """Note that the reminder to one approver left."""
    await conn.execute(Q["record_approver_reminder"], {"id": approval_id, "seat": seat})


async def record_approver_delivery_event(
    conn: Conn,
    *,
    resend_message_id: str,
    approval_id: UUID | None,
    seat: int | None,
    delivery_status: str,
) -> ApproverRow | None:
    """A bounce or complaint about the email to one approver; None if not one of ours."""
    row = await (
        await conn.execute(
            Q["record_approver_delivery_event"],
            {
                "resend_message_id": resend_message_id,
                "approval_id": approval_id,
                "seat": seat,
                "delivery_status": delivery_status,
            },
        )
    ).fetchone()
    return ApproverRow.model_validate(row) if row else None
