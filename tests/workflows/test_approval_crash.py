"""A failure between sending the approval email and recording it sends no second email."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_email, approval_row, reply
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job

# A real database failure, once, at the moment the sent email is recorded: the activity
# has called Resend and dies before its write commits, as a crashed worker would.
FAIL_FIRST_RECORD = """
CREATE SEQUENCE fault_injection_seq;
CREATE FUNCTION fail_first_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('fault_injection_seq') = 1 THEN
        RAISE EXCEPTION 'injected failure after the email left';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fail_first_record BEFORE UPDATE OF resend_message_id ON approvals
    FOR EACH ROW WHEN (NEW.resend_message_id IS NOT NULL) EXECUTE FUNCTION fail_first_record();
"""


async def test_failure_between_send_and_record_sends_exactly_one_email(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        async with stack.pool.connection() as conn:
            await conn.execute(FAIL_FIRST_RECORD)
        request = await job_request(stack, [SAFE_STEPS[0], DELETE_STEP], email="quinn@example.com")
        handle = await start_job(stack, request)

        async def recorded() -> dict | None:
            row = await approval_row(stack, request.job_id)
            return row if row["resend_message_id"] else None

        row = await eventually(recorded, what="email recorded after the retry")
        failures = await stack.fetchrow("SELECT last_value FROM fault_injection_seq")
        assert failures == {"last_value": 2}  # the first attempt failed, the retry recorded
        assert stack.emulators.resend.sends_by_idempotency_key() == {
            f"approval-request/{row['id']}": 1
        }
        assert len(stack.emulators.resend.sent_emails()) == 1
        sent = await approval_email(stack, "quinn@example.com")
        assert row["resend_message_id"] == sent["id"]
        await reply(stack, sent["id"], "approve")
        assert (await handle.result()).status == "completed"
