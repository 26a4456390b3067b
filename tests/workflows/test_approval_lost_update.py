"""A decision the database recorded but the workflow's history lost.

The gate persists a decision inside the ``decide_approval`` update's handler (a local
activity). If the workflow task that ran it fails before it completes and the update is
lost with it (a worker crash, a server restart), the row says decided while the workflow
still waits. The person's reply is redelivered (the ingress answered 503), finds the row
decided, and must hand the workflow the recorded decision; a gate that reaches its
deadline in that state keeps the recorded decision instead of failing on the decided row.
Here the lost update is made by recording the decision the way the handler does, without
the update.
"""

from __future__ import annotations

from typing import Any

from temporalio.testing import WorkflowEnvironment

from db import approvals
from db.transitions import TransitionContext
from tests.harness import Stack, running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row, reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS

STEPS = [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[2]]


async def record_without_update(
    stack: Stack, job_id: object, workflow_id: str, *, approved: bool, decided_by: str
) -> dict[str, Any]:
    """What the update's handler commits before its workflow task is lost."""

    async def recorded() -> dict[str, Any] | None:  # after the request email's id
        row = await approval_row(stack, job_id)
        return row if row["resend_message_id"] else None

    row = await eventually(recorded, what="the request email recorded")
    async with stack.pool.connection() as conn:
        await approvals.record_approval_decision(
            conn,
            row["id"],
            TransitionContext(reason="lost update", workflow_id=workflow_id),
            approved=approved,
            decided_by=decided_by,
            channel="email",
            note=None,
        )
    return row


async def job_status(stack: Stack, job_id: object, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", job_id)
        return job if job and job["status"] in statuses else None

    return await eventually(probe, timeout=60, what=f"job {'/'.join(statuses)}")


async def test_redelivered_reply_hands_the_workflow_its_recorded_approval(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        email = "lena@example.com"
        request, handle, sent = await waiting_job(stack, STEPS, email)
        await record_without_update(
            stack, request.job_id, handle.id, approved=True, decided_by=email
        )
        await reply(stack, sent["id"], "Approve")  # the redelivery finds the row decided
        await job_status(stack, request.job_id, "completed", "failed", "cancelled")
        result = await handle.result()
        assert result.status == "completed"
        assert [s.status for s in result.steps] == ["completed"] * 3
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "approved" and row["decided_by"] == email


async def test_a_recorded_rejection_is_delivered_not_the_later_approve(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The workflow gets what the row records; the later reply decides nothing."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        email = "ravi@example.com"
        request, handle, sent = await waiting_job(stack, STEPS, email)
        await record_without_update(
            stack, request.job_id, handle.id, approved=False, decided_by=email
        )
        await reply(stack, sent["id"], "Approve")
        await job_status(stack, request.job_id, "completed", "failed", "cancelled")
        result = await handle.result()
        assert result.status == "cancelled"
        assert [s.status for s in result.steps] == ["completed"]  # the delete never ran
        assert (await approval_row(stack, request.job_id))["status"] == "rejected"


async def test_gate_at_its_deadline_keeps_the_recorded_decision(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Nobody redelivers: at the deadline the close finds the row decided and keeps it."""
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        email = "mo@example.com"
        request, handle, _sent = await waiting_job(stack, STEPS, email)
        await record_without_update(
            stack, request.job_id, handle.id, approved=True, decided_by=email
        )
        result = await handle.result()  # time skips to the deadline
        assert result.status == "completed"
        assert [s.status for s in result.steps] == ["completed"] * 3
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "approved" and row["decided_by"] == email
        closes = await stack.fetchall(
            "SELECT to_status FROM status_transitions WHERE entity_id = %s", row["id"]
        )
        assert "expired" not in {c["to_status"] for c in closes}
