"""The team-approval transitions are idempotent: a retried escalation asks nobody twice
and returns what it recorded, a vote is kept once per approver (the first stands), a
retried delegation returns its seat, and a gate's plan is resolved once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from db import approval_teams, approvals
from db.transitions import TransitionContext
from tests.db.factories import insert_user, insert_workspace


async def _gate(conn: AsyncConnection[Any]) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    """An agency (admin, two managers, a backup member), a payment route, and a job of
    the member's waiting at a gate."""
    t = uuid.uuid4().hex[:6]
    people = {
        n: await insert_user(conn, f"{n}-{t}@agency.test") for n in ("ann", "max", "mo", "bea")
    }
    org = uuid.uuid4()
    await conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'A')", (org,))
    for name, role, backup in (
        ("ann", "admin", False),
        ("max", "manager", False),
        ("mo", "manager", False),
        ("bea", "member", True),
    ):
        await conn.execute(
            "INSERT INTO team_members (org_id, user_id, role, backup_approver) "
            "VALUES (%s, %s, %s, %s)",
            (org, people[name], role, backup),
        )
    await conn.execute(
        "INSERT INTO approval_routes (org_id, action_type, approver_roles, quorum) "
        "VALUES (%s, 'payment', '{manager}', 2)",
        (org,),
    )
    workspace = await insert_workspace(conn, people["bea"])
    job = uuid.uuid4()
    await conn.execute(
        "INSERT INTO jobs (id, user_id, workspace_id, org_id, status) "
        "VALUES (%s, %s, %s, %s, 'pending')",
        (job, people["bea"], workspace, org),
    )
    await conn.execute("UPDATE jobs SET status = 'running' WHERE id = %s", (job,))
    approval = uuid.uuid4()
    await approvals.open_approval(
        conn, approval_id=approval, job_id=job, action_type="payment", description="pay",
        screenshot_url=None, approver_email=None,
        expires_at=datetime.now(UTC) + timedelta(days=1), step_index=1, workflow_id="job-x",
        ctx=TransitionContext(reason="test"),
    )  # fmt: skip
    return approval, {n: p for n, p in people.items()}


async def test_plan_escalation_vote_and_delegation_are_idempotent(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        approval, _ = await _gate(conn)
        plan = await approval_teams.plan_gate(conn, approval, escalate_after=None)
        again = await approval_teams.plan_gate(conn, approval, escalate_after=None)
        assert [a.email for a in again.approvers] == [a.email for a in plan.approvers]
        assert [a.email.split("-")[0] for a in plan.approvers] == ["max", "mo"]
        assert plan.quorum == again.quorum == 2

        first, asked = await approval_teams.escalate(
            conn, approval, number=1, cause="bounced", reason="r"
        )
        retry, asked_again = await approval_teams.escalate(
            conn, approval, number=1, cause="bounced", reason="r"
        )
        assert first == retry and [a.seat for a in asked] == [a.seat for a in asked_again]
        assert first.tier == "backup" and [a.split("-")[0] for a in first.asked] == ["bea"]
        second, _ = await approval_teams.escalate(
            conn, approval, number=2, cause="no_decision", reason="r"
        )
        third, nobody = await approval_teams.escalate(
            conn, approval, number=3, cause="no_decision", reason="r"
        )
        assert (second.tier, third.tier, nobody) == ("admin", "none", [])
        assert len(await approval_teams.list_escalations(conn, approval)) == 3
        assert len(await approval_teams.list_approvers(conn, approval)) == 4

        max_, mo = plan.approvers[0].email, plan.approvers[1].email
        ctx = TransitionContext(reason="test")
        for approved in (True, False):  # the second vote of the same person is not kept
            await approval_teams.record_vote(
                conn, approval, ctx, voter=max_.upper(), approved=approved, channel="email",
                note=None, final=False,
            )  # fmt: skip
        votes = await approval_teams.list_votes(conn, approval)
        assert [(v.voter, v.decision) for v in votes] == [(max_, "approve")]

        kim = f"kim-{uuid.uuid4().hex[:6]}@agency.test"
        await conn.execute(
            "INSERT INTO team_members (org_id, user_id, role) "
            "SELECT org_id, %s, 'manager' FROM approvals WHERE id = %s",
            (await insert_user(conn, kim), approval),
        )
        seat = await approval_teams.delegate(conn, approval, delegated_by=mo, delegate_to=kim)
        retried = await approval_teams.delegate(conn, approval, delegated_by=mo, delegate_to=kim)
        assert seat == retried and seat.delegated_from == mo
