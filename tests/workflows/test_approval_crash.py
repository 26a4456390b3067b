"""A failure between sending the approval email and recording it sends no second email."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.faults import fail_first_update, failures_injected
from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_email, approval_row, reply
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job


async def test_failure_between_send_and_record_sends_exactly_one_email(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        async with stack.pool.connection() as conn:
            await fail_first_update(conn, "approvals", "resend_message_id")
        request = await job_request(stack, [SAFE_STEPS[0], DELETE_STEP], email="quinn@example.com")
        handle = await start_job(stack, request)

        async def recorded() -> dict | None:
            row = await approval_row(stack, request.job_id)
            return row if row["resend_message_id"] else None

        row = await eventually(recorded, what="email recorded after the retry")
        async with stack.pool.connection() as conn:
            assert (
                await failures_injected(conn) == 2
            )  # the first attempt failed, the retry recorded
        assert stack.emulators.resend.sends_by_idempotency_key() == {
            f"approval-request/{row['id']}": 1
        }
        assert len(stack.emulators.resend.sent_emails()) == 1
        sent = await approval_email(stack, "quinn@example.com")
        assert row["resend_message_id"] == sent["id"]
        await reply(stack, sent["id"], "approve")
        assert (await handle.result()).status == "completed"
