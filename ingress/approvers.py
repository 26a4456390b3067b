"""Who a token of an approval belongs to: any approver asked to decide it (issue 27), or,
for gates opened before teams, the one approver on the row."""

from __future__ import annotations

from datetime import datetime

from activities import approval_tokens
from activities.approval_tokens import ApprovalToken, Purpose
from db import approval_teams
from db.approvals import ApprovalRow
from db.pool import Pool


async def approver_addresses(pool: Pool, approval: ApprovalRow) -> list[str]:
    """Everyone a token of ``approval`` may be bound to, the row's approver first."""
    async with pool.connection() as conn:
        seats = await approval_teams.list_approvers(conn, approval.id)
    return [approval.approver_email or "", *(seat.email for seat in seats)]


async def token_holder(
    pool: Pool,
    secret: str,
    token: str,
    approval: ApprovalRow,
    *,
    purpose: Purpose,
    now: datetime,
) -> tuple[ApprovalToken, str]:
    """The verified token and the approver it is bound to; ``InvalidToken`` otherwise."""
    addresses = await approver_addresses(pool, approval)
    return approval_tokens.verify_any(secret, token, addresses, purpose=purpose, now=now)
