"""Each event reaches the owner's Slack channel once: a generation flagged NSFW, a sync
ended partial, a rejected step, a bounced approval email (redelivered too) and the
escalation it causes, and a connection's credentials expiring (each expiry once). A
cancel that arrives while an event is raised is obeyed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from activities.notifications import notify_credentials_expired, store_channel
from tests.generations.helpers import start, user_with_key
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.metrics import add_connection, backfill
from tests.metrics.test_metric_sync import CAMPAIGNS
from tests.notifications.test_delivery import BOX, all_final
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_email, approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workflows.models.approval import ApprovalDecisionInput


async def slack_channel(stack: Stack, user_id: uuid.UUID) -> None:
    webhook = stack.emulators.slack.add_webhook(f"{stack.emulators.url}/slack")
    await store_channel(stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook)


async def texts(stack: Stack, user_id: uuid.UUID, count: int) -> list[str]:
    await eventually(lambda: all_final(stack, user_id, count), what=f"{count} deliveries")
    return [m["text"] for m in stack.emulators.slack.messages()]


async def test_nsfw_generation_is_told(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.higgsfield.set_outcome("nsfw")
        user_id = await user_with_key(stack)
        await slack_channel(stack, user_id)
        _, handle = await start(stack, user_id, "portrait")
        assert (await handle.result()).status == "nsfw"
        await record_history(handle, "generation_nsfw_notified")
        (text,) = await texts(stack, user_id, 1)
        assert text.startswith("🚫 Generation *portrait* status changed from `")
        assert "` to `nsfw`" in text


async def test_partial_sync_is_told_to_the_connections_owner(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await user_with_key(stack)
        await slack_channel(stack, user_id)
        stack.emulators.meta.configure_account("1234567", campaigns=CAMPAIGNS)
        stack.emulators.meta.fail_page("1234567", 1, times=100)
        connection = await add_connection(stack, account_id="1234567")
        async with stack.pool.connection() as conn:
            await conn.execute(
                "UPDATE platform_connections SET created_by = %s WHERE id = %s",
                (user_id, connection.id),
            )
        handle = await backfill(stack, connection)
        assert (await handle.result()).status == "partial"
        await record_history(handle, "metric_sync_partial_notified")
        (text,) = await texts(stack, user_id, 1)
        assert "⚠️ Metric sync *meta account 1234567" in text
        assert "status changed from `running` to `partial`\n>1 page(s) failed" in text


async def test_rejected_step_is_told(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [SAFE_STEPS[0], DELETE_STEP], email="ria@example.com")
        await slack_channel(stack, request.user_id)
        handle = await start_job(stack, request)
        row = await approval_row(stack, request.job_id)
        await handle.execute_update(
            "decide_approval",
            ApprovalDecisionInput(
                approval_id=row["id"], decision="reject", decided_by="ria@example.com"
            ),
        )
        assert (await handle.result()).status == "cancelled"
        await record_history(handle, "agent_job_rejected_notified")
        (text,) = await texts(stack, request.user_id, 1)
        assert text.startswith(
            "🔄 Job *Tidy the specs* status changed from `waiting_approval` to `rejected`\n"
            ">step 2 rejected by ria@example.com"
        )


async def test_bounced_approval_email_is_told_once_even_if_redelivered(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [DELETE_STEP], email="nia@example.com")
        await slack_channel(stack, request.user_id)
        handle = await start_job(stack, request)
        sent = await approval_email(stack, "nia@example.com")
        resend = stack.emulators.resend
        for _ in range(2):  # a second bounce event of the same email: told once
            status = await asyncio.to_thread(resend.deliver_event, "email.bounced", sent["id"])
            assert status == 200
        # The bounce, and the escalation it caused (nobody else in a one-person team).
        told = sorted(await texts(stack, request.user_id, 2))
        assert told[0].startswith(
            "⏫ Approval of *Delete 'Old Specs'* status changed from `pending` to `escalated`"
        )
        assert "nobody else to ask" in told[0]
        assert told[1].startswith(
            "📭 Approval email for *Delete 'Old Specs'* status changed from `sent` to `bounced`"
        )
        await handle.cancel()


async def test_each_credentials_expiry_is_told_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await user_with_key(stack)
        await slack_channel(stack, user_id)
        connection = await add_connection(stack, account_id="999")
        async with stack.pool.connection() as conn:
            await conn.execute(
                "UPDATE platform_connections SET created_by = %s WHERE id = %s",
                (user_id, connection.id),
            )
        for occurrence in ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-12-24"):
            await notify_credentials_expired(
                stack.pool,
                stack.client,
                connection_id=connection.id,
                account="Meta 999",
                reason="the token expired and could not be refreshed: reconnect the account",
                occurrence=occurrence,
                task_queue=task_queue,
            )
        found = await texts(stack, user_id, 2)
        assert len(found) == 2
        assert all(
            t.startswith(
                "🔄 Connection *Meta 999* status changed from `active` to `credentials_expired`"
            )
            for t in found
        )


async def test_a_cancel_that_arrives_while_an_escalation_is_told_is_obeyed(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The escalation's event is being raised (held up by a lock on the channels) when an
    operator cancels the job: the job ends cancelled, its gate and row too. The old notify
    took the cancel for a failed notification and the gate went on waiting for 3 days."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [DELETE_STEP], email="ida@example.com")
        handle = await start_job(stack, request)
        sent = await approval_email(stack, "ida@example.com")
        async with stack.pool.connection() as lock, lock.transaction():
            await lock.execute("LOCK TABLE notification_channels IN ACCESS EXCLUSIVE MODE")
            resend = stack.emulators.resend
            bounce = asyncio.create_task(
                asyncio.to_thread(resend.deliver_event, "email.bounced", sent["id"])
            )

            async def telling() -> bool:
                described = await handle.describe()
                pending = described.raw_description.pending_activities
                return any(a.activity_type.name == "notify" for a in pending)

            await eventually(telling, what="the escalation's notification under way")
            await handle.cancel()
            # The cancel reaches the workflow while its notify activity waits.
            await eventually(lambda: _cancel_seen(handle), what="the cancel in the job's history")
        with pytest.raises(WorkflowFailureError) as ended:
            await asyncio.wait_for(handle.result(), timeout=60)
        assert isinstance(ended.value.cause, CancelledError)
        assert (await approval_row(stack, request.job_id))["status"] == "cancelled"
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
        assert job == {"status": "cancelled"}
        assert await bounce == 200


async def _cancel_seen(handle: Any) -> bool:
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_cancel_requested_event_attributes"):
            return True
    return False
