"""A delivery whose workflow was terminated (or never started) still ends final: the
sweep closes its row."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from activities.notifications import raise_event, store_channel
from db import notifications
from tests.harness import running_stack
from tests.notifications.test_delivery import BOX, event, new_user
from tests.reliability.test_sweep import _reconcile
from tests.waiting import eventually


async def test_sweep_closes_deliveries_their_workflows_left_open(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await new_user(stack)
        webhook = stack.emulators.slack.add_webhook(f"{stack.emulators.url}/slack")
        channel = await store_channel(
            stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook, per_minute=1
        )
        first, second = event(user_id, title="first"), event(user_id, title="second")
        # One at a time: raised together, either may take the channel's one slot first.
        await raise_event(stack.pool, stack.client, first, task_queue=task_queue)
        await eventually(
            lambda: stack.emulators.slack.messages(), timeout=60, what="the first delivery"
        )
        await raise_event(stack.pool, stack.client, second, task_queue=task_queue)
        # The second waits a minute for its slot: terminated meanwhile, by an operator.
        waiting = await eventually(
            lambda: stack.fetchrow(
                "SELECT id, temporal_workflow_id FROM notification_queue "
                "WHERE event_key = %s AND next_attempt_at > now()",
                second.key,
            ),
            timeout=60,
            what="the second delivery waiting for its slot",
        )
        await stack.client.get_workflow_handle(waiting["temporal_workflow_id"]).terminate("stuck")
        # A row whose workflow never started (every retry of its raise failed).
        async with stack.pool.connection() as conn:
            (orphan,) = await notifications.enqueue_deliveries(
                conn,
                event_key=f"test/{uuid.uuid4()}",
                event_type="job.failed",
                user_id=user_id,
                org_id=None,
                entity_type="job",
                entity_id=uuid.uuid4(),
                event_data={},
                max_attempts=5,
            )
            await conn.execute(
                "UPDATE notification_queue SET created_at = now() - interval '11 minutes' "
                "WHERE id = ANY(%s)",
                ([waiting["id"], orphan.id],),
            )
        await _reconcile(stack, task_queue)
        rows = await stack.fetchall(
            "SELECT id, is_processed, outcome, last_error FROM notification_queue "
            "WHERE channel_id = %s",
            channel,
        )
        by_id = {r["id"]: r for r in rows}
        assert (by_id[waiting["id"]]["outcome"], by_id[waiting["id"]]["last_error"]) == (
            "failed",
            "terminated",
        )
        assert (by_id[orphan.id]["outcome"], by_id[orphan.id]["last_error"]) == (
            "failed",
            "workflow not found",
        )
        assert all(r["is_processed"] for r in rows)
        assert [m["text"].split("*")[1] for m in stack.emulators.slack.messages()] == ["first"]
