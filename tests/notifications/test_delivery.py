"""Notifications end to end: a failed job tells its owner on Slack and by email, once, and
every delivery's row ends final; Slack's refusals, rate limits and a post of unknown
outcome are handled as Slack means them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.notifications import raise_event, store_channel
from tests.db.factories import insert_user
from tests.encryption import TEST_KEYRING, readable_history
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.waiting import eventually
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workflows.models.notification import NotificationEvent

BOX = TEST_KEYRING.credential_box()
BOT_TOKEN = "xoxb-test-" + "7" * 24


async def deliveries(stack: Stack, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's notification_queue rows with their channel's kind."""
    return await stack.fetchall(
        "SELECT q.*, c.kind FROM notification_queue q "
        "JOIN notification_channels c ON c.id = q.channel_id WHERE q.user_id = %s "
        "ORDER BY c.kind",
        user_id,
    )


async def all_final(stack: Stack, user_id: uuid.UUID, count: int) -> list[dict[str, Any]] | None:
    rows = await deliveries(stack, user_id)
    return rows if len(rows) == count and all(r["is_processed"] for r in rows) else None


async def finished(stack: Stack, row: dict[str, Any]) -> Any:
    """The handle of a delivery's workflow, once it has ended."""
    handle = stack.client.get_workflow_handle(row["temporal_workflow_id"])
    run_id = (await handle.describe()).run_id
    handle = stack.client.get_workflow_handle(row["temporal_workflow_id"], run_id=run_id)
    await handle.result()
    return handle


def event(user_id: uuid.UUID, **fields: Any) -> NotificationEvent:
    values: dict[str, Any] = {
        "event_type": "generation.nsfw",
        "entity_type": "generation",
        "entity_id": uuid.uuid4(),
        "title": "A cat in a hat",
        "old_status": "in_progress",
        "new_status": "nsfw",
        "user_id": user_id,
    }
    return NotificationEvent.model_validate(values | fields)


async def new_user(stack: Stack) -> uuid.UUID:
    async with stack.pool.connection() as conn:
        return await insert_user(conn)


async def test_failed_job_tells_its_owner_once_on_slack_and_by_email(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        request = await job_request(stack, SAFE_STEPS[:1])
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack", "#ops")
        slack.add_bot(BOT_TOKEN, "C0ALERTS")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", user_id=request.user_id, secret=webhook
        )
        await store_channel(
            stack.pool,
            BOX,
            kind="slack_bot",
            user_id=request.user_id,
            secret=BOT_TOKEN,
            slack_channel="C0ALERTS",
        )
        await store_channel(stack.pool, BOX, kind="email", user_id=request.user_id)
        # A channel of someone else, and one of ours for other events only: not told.
        await store_channel(
            stack.pool,
            BOX,
            kind="email",
            user_id=request.user_id,
            email_to="syncs@example.com",
            events=["sync.failed"],
        )
        stack.emulators.steel.faults.fail_next(1, status=422, path_prefix="/v1/sessions/")
        handle = await start_job(stack, request)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await record_history(handle, "agent_job_failed_notified")

        rows = await eventually(lambda: all_final(stack, request.user_id, 3), what="deliveries")
        assert [(r["kind"], r["outcome"], r["attempts"]) for r in rows] == [
            ("email", "sent", 1),
            ("slack_bot", "sent", 1),
            ("slack_webhook", "sent", 1),
        ]
        assert all(r["event_type"] == "job.failed" and r["last_error"] is None for r in rows)
        messages = slack.messages()
        line = "❌ Job *Tidy the specs* status changed from `running` to `failed`"
        assert sorted((m["via"], m["channel"]) for m in messages) == [
            ("chat.postMessage", "C0ALERTS"),
            ("webhook", "#ops"),
        ]
        assert all(m["text"].startswith(line) for m in messages)
        emails = [
            e
            for e in stack.emulators.resend.sent_emails()
            if e.get("subject", "").startswith("Job Tidy the specs")
        ]
        assert len(emails) == 1
        owner = await stack.fetchrow(
            "SELECT email_address FROM profiles WHERE id = %s", request.user_id
        )
        assert owner is not None and emails[0]["to"] == [owner["email_address"]]

        # The same event again (a retried activity, a second raise): nothing new is sent.
        again = NotificationEvent.model_validate(
            rows[0]["event_data"] | {"user_id": request.user_id}
        )
        result = await raise_event(stack.pool, stack.client, again, task_queue=task_queue)
        assert result.deliveries == 3
        assert len(await deliveries(stack, request.user_id)) == 3
        assert len(slack.messages()) == 2
        # Secrets are stored encrypted and never reach a history in plaintext.
        stored = await stack.fetchall(
            "SELECT secret FROM notification_channels WHERE secret IS NOT NULL"
        )
        assert all(s["secret"].startswith("v2:") for s in stored)
        for row in rows:
            history = await stack.client.get_workflow_handle(
                row["temporal_workflow_id"]
            ).fetch_history()
            text = await readable_history(history)
            assert webhook not in text and BOT_TOKEN not in text
            # An email is sent on the email queue, under Resend's rate limit with the
            # approval emails; a Slack post on the workflow's own queue.
            [queue] = [
                e.activity_task_scheduled_event_attributes.task_queue.name
                for e in history.events
                if e.HasField("activity_task_scheduled_event_attributes")
                and e.activity_task_scheduled_event_attributes.activity_type.name
                == "deliver_notification"
            ]
            assert queue == (f"{task_queue}-email" if row["kind"] == "email" else task_queue)
        await record_history(await finished(stack, rows[2]), "notification_sent")


@pytest.mark.parametrize(
    ("kind", "setup", "error"),
    [
        ("slack_bot", "unknown token", "invalid_auth"),
        ("slack_bot", "unknown channel", "channel_not_found"),
        ("slack_webhook", "unknown webhook", "no_service"),
    ],
)
async def test_slack_refusal_ends_the_delivery_failed_without_retrying(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    kind: str,
    setup: str,
    error: str,
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        slack.add_bot(BOT_TOKEN, "C0ALERTS")
        if kind == "slack_bot":
            token = "xoxb-forged" if setup == "unknown token" else BOT_TOKEN
            channel = "C0NOWHERE" if setup == "unknown channel" else "C0ALERTS"
            await store_channel(
                stack.pool,
                BOX,
                kind="slack_bot",
                user_id=user_id,
                secret=token,
                slack_channel=channel,
            )
        else:
            url = f"{stack.emulators.url}/slack/services/T1/B1/not-a-hook"
            await store_channel(stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=url)
        await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
        (row,) = await eventually(lambda: all_final(stack, user_id, 1), what="delivery")
        assert row["outcome"] == "failed" and row["attempts"] == 1
        assert error in row["last_error"] and row["next_attempt_at"] is None
        if error == "invalid_auth":
            await record_history(await finished(stack, row), "notification_refused")
        assert row["processed_at"] is not None and row["send_claimed_at"] is None
        assert slack.messages() == []


async def test_rate_limited_post_waits_for_retry_after_and_posts_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        slack.add_bot(BOT_TOKEN, "C0ALERTS")
        slack.rate_limit_next(1, retry_after=1)
        await store_channel(
            stack.pool,
            BOX,
            kind="slack_bot",
            user_id=user_id,
            secret=BOT_TOKEN,
            slack_channel="C0ALERTS",
        )
        await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
        (row,) = await eventually(lambda: all_final(stack, user_id, 1), what="delivery")
        assert row["outcome"] == "sent" and row["attempts"] == 2
        await record_history(await finished(stack, row), "notification_retried")
        assert "ratelimited" in row["last_error"]
        assert [m["text"] for m in slack.messages()] == [
            "🚫 Generation *A cat in a hat* status changed from `in_progress` to `nsfw`"
        ]


async def test_a_claimed_post_of_unknown_outcome_is_never_posted_again(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A worker that died between claiming the post and recording it: the next attempt
    finds the claim and ends the delivery unknown instead of posting a second time."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack")
        await store_channel(stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook)
        # Claimed by an attempt that never came back: set as that attempt left it.
        async with stack.pool.connection() as conn:
            await conn.execute(
                "CREATE OR REPLACE FUNCTION public.test_claim() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN NEW.send_claimed_at := now(); RETURN NEW; END $$"
            )
            await conn.execute(
                "CREATE TRIGGER test_claim BEFORE INSERT ON public.notification_queue "
                "FOR EACH ROW EXECUTE FUNCTION public.test_claim()"
            )
        await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
        (row,) = await eventually(lambda: all_final(stack, user_id, 1), what="delivery")
        assert row["outcome"] == "unknown" and row["attempts"] == 1
        await record_history(await finished(stack, row), "notification_unknown")
        assert "not posted again" in row["last_error"]
        assert slack.messages() == []


async def test_hostile_titles_cannot_mention_or_link(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack")
        await store_channel(stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook)
        hostile = event(
            user_id,
            title="<!channel> *urgent* <https://evil.example|click>\nsecond line",
            reason="`rm` & <@U123>",
        )
        await raise_event(stack.pool, stack.client, hostile, task_queue=task_queue)
        await eventually(lambda: all_final(stack, user_id, 1), what="delivery")
        (message,) = slack.messages()
        assert "<!channel>" not in message["text"] and "<https" not in message["text"]
        assert "<@U123>" not in message["text"]
        assert (
            "&lt;!channel&gt; urgent &lt;https://evil.example|click&gt; second line"
            in (message["text"])
        )
        assert message["text"].count("\n") == 1  # the reason's line, no forged one


async def test_a_channel_gets_at_most_its_rate_and_every_message_in_time(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Three events on a channel of one message a minute: sent a minute apart, each once
    (the waits are Temporal timers: skipped here)."""
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook, per_minute=1
        )
        titles = ["first", "second", "third"]
        for title in titles:
            await raise_event(
                stack.pool, stack.client, event(user_id, title=title), task_queue=task_queue
            )
        rows = await deliveries(stack, user_id)
        assert len(rows) == 3
        # Only a handle from start_workflow skips time while awaited; these were started
        # by the activity: skip past the last slot explicitly.
        await time_env.sleep(timedelta(minutes=3))
        waits = []
        for row in rows:
            history = await (await finished(stack, row)).fetch_history()
            timers = [
                e.timer_started_event_attributes
                for e in history.events
                if e.HasField("timer_started_event_attributes")
            ]
            waits += [round(t.start_to_fire_timeout.ToTimedelta().total_seconds()) for t in timers]
            if timers:
                await record_history(await finished(stack, row), "notification_rate_limited")
        assert sorted(waits) == [60, 120]  # slots a minute apart; the first sent at once
        final = await all_final(stack, user_id, 3)
        assert final is not None and {r["outcome"] for r in final} == {"sent"}
        assert sorted(m["text"].split("*")[1] for m in slack.messages()) == sorted(titles)


async def test_a_server_error_from_slack_is_not_posted_again(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A 5xx may come after Slack posted: the delivery ends unknown, with no second post;
    an email's 5xx is retried (its idempotency key makes that safe) and sent."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack")
        await store_channel(stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=webhook)
        await store_channel(stack.pool, BOX, kind="email", user_id=user_id)
        slack.faults.fail_next(1, status=503, path_prefix="/services/")
        stack.emulators.resend.faults.fail_next(1, status=503, path_prefix="/emails")
        await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
        rows = await eventually(lambda: all_final(stack, user_id, 2), timeout=60, what="final")
        by_kind = {r["kind"]: r for r in rows}
        assert (by_kind["slack_webhook"]["outcome"], by_kind["slack_webhook"]["attempts"]) == (
            "unknown",
            1,
        )
        assert slack.messages() == []
        assert (by_kind["email"]["outcome"], by_kind["email"]["attempts"]) == ("sent", 2)
        assert by_kind["email"]["last_error"]  # the first attempt's error is kept


async def test_an_internal_error_from_slack_is_not_posted_again(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Slack says an internal_error may come after the post: unknown, no second post."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        slack = stack.emulators.slack
        user_id = await new_user(stack)
        slack.add_bot(BOT_TOKEN, "C0ALERTS")
        slack.error_next("internal_error")
        await store_channel(
            stack.pool, BOX, kind="slack_bot", user_id=user_id, secret=BOT_TOKEN,
            slack_channel="C0ALERTS",
        )  # fmt: skip
        await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
        (row,) = await eventually(lambda: all_final(stack, user_id, 1), what="delivery")
        assert (row["outcome"], row["attempts"]) == ("unknown", 1)
        assert "internal_error" in row["last_error"]
        assert len(slack.messages()) == 1
