"""A worker killed while a notification is being sent: one Slack message and one email,
and both rows final."""

from __future__ import annotations

import asyncio
import signal

from temporalio.testing import WorkflowEnvironment

from activities.notifications import raise_event, store_channel
from tests.harness import running_stack, start_worker_process
from tests.notifications.test_delivery import BOX, all_final, event, new_user
from tests.waiting import eventually


async def test_killed_worker_mid_send_sends_one_slack_message_and_one_email(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        slack, resend = stack.emulators.slack, stack.emulators.resend
        user_id = await new_user(stack)
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack")
        await store_channel(stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook)
        await store_channel(stack.pool, BOX, kind="email", user_id=user_id)
        # Slack takes the message, then answers late: the worker dies before it hears.
        slack.answer_delay_s = 5
        first = start_worker_process(stack.settings, address)
        try:
            await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
            await eventually(slack.messages, what="the post reached Slack")
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
        finally:
            if first.poll() is None:
                first.kill()
        slack.answer_delay_s = 0
        second = start_worker_process(stack.settings, address)
        try:
            rows = await eventually(
                lambda: all_final(stack, user_id, 2), timeout=90, what="both deliveries final"
            )
        finally:
            second.terminate()
            await asyncio.to_thread(second.wait, 20)
        by_kind = {r["kind"]: r for r in rows}
        assert len(slack.messages()) == 1  # never posted twice
        # The post reached Slack but its answer did not reach us: recorded unknown.
        assert by_kind["slack_webhook"]["outcome"] == "unknown"
        assert "not posted again" in by_kind["slack_webhook"]["last_error"]
        email_row = by_kind["email"]
        assert email_row["outcome"] == "sent"
        assert resend.sends_by_idempotency_key() == {f"notification/{email_row['id']}": 1}
