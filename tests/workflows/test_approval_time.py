"""Reminder and expiry of approval gates, under the time-skipping test server."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.history_recording import record_history
from tests.workflows.approval_helpers import approval_email, approval_row, reply
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workflows.models.approval import ApprovalPolicy

STEPS = [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[1]]


async def test_reminder_then_expiry_stops_the_job(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        request = await job_request(stack, STEPS, email="olga@example.com")
        handle = await start_job(stack, request)
        result = await handle.result()  # time skips over 24 h and 72 h
        assert result.status == "cancelled"
        assert "step 2 expired" in (result.reason or "")
        await record_history(handle, "agent_job_expired")
        keys = stack.emulators.resend.sends_by_idempotency_key()
        row = await approval_row(stack, request.job_id)
        assert keys == {f"approval-request/{row['id']}": 1, f"approval-reminder/{row['id']}": 1}
        reminder = await approval_email(stack, "olga@example.com", kind="reminder")
        assert reminder["subject"].startswith("Reminder:")
        headers = {k.lower(): v for k, v in reminder["headers"].items()}
        request_email = await approval_email(stack, "olga@example.com")
        # Threaded on the Message-ID Resend gave the request, as the approver's client saw it.
        assert headers["in-reply-to"] == row["email_message_id"] == request_email["message_id"]
        assert row["status"] == "expired" and row["reminder_sent_at"] is not None
        assert [r.status for r in result.steps] == ["completed"]

        # A reply after the deadline changes nothing.
        await reply(stack, request_email["id"], "Approve")
        assert (await approval_row(stack, request.job_id))["status"] == "expired"


async def test_skip_policy_records_the_skipped_step_and_continues(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        policy = ApprovalPolicy(
            reminder_after=timedelta(hours=1), expires_after=timedelta(hours=2), on_rejection="skip"
        )
        request = await job_request(stack, STEPS, email="pat@example.com", approval=policy)
        handle = await start_job(stack, request)
        result = await handle.result()
        await record_history(handle, "agent_job_skipped_on_expiry")
        assert result.status == "completed"
        assert [r.status for r in result.steps] == ["completed", "skipped", "completed"]
        step = await stack.fetchrow(
            "SELECT status, error FROM job_steps WHERE job_id = %s AND step_index = 1",
            request.job_id,
        )
        assert step is not None and step["status"] == "skipped"
        assert "expired" in step["error"]
