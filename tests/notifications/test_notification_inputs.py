"""What an event accepts and what a message says: hostile and ambiguous values."""

from __future__ import annotations

import logging
import uuid

import pytest
from pydantic import ValidationError

from activities import slack
from activities.notification_messages import compose
from devstack.emulators.runner import serve_in_thread
from devstack.emulators.slack import SlackEmulator
from workers.families import status_of
from workers.settings import load_settings
from workflows.models.notification import NotificationEvent

BASE = {
    "event_type": "job.failed",
    "entity_type": "job",
    "entity_id": str(uuid.uuid4()),
    "title": "t",
    "old_status": "running",
    "new_status": "failed",
}


@pytest.mark.parametrize(
    "change",
    [
        {"event_type": "job.exploded"},
        {"event_type": "JOB.FAILED"},
        {"event_type": ""},
        {"entity_type": "request"},
        {"entity_id": "not-a-uuid"},
        {"title": "x" * 501},
        {"reason": "x" * 2001},
        {"occurrence": "x" * 101},
        {"user_id": "everyone"},
    ],
)
def test_an_event_that_is_not_one_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        NotificationEvent.model_validate(BASE | change)


def test_the_key_tells_occurrences_apart_and_nothing_else() -> None:
    one = NotificationEvent.model_validate(BASE)
    assert one.key == NotificationEvent.model_validate(BASE | {"title": "other"}).key
    again = NotificationEvent.model_validate(BASE | {"occurrence": "2"})
    assert again.key != one.key and again.key.endswith("/2")
    other = NotificationEvent.model_validate(BASE | {"event_type": "job.rejected"})
    assert other.key != one.key


@pytest.mark.parametrize(
    ("data", "slack_has", "slack_lacks"),
    [
        ({"title": "<!here> hi"}, "&lt;!here&gt; hi", "<!here>"),
        ({"title": "a *b* c"}, "*a b c*", "*b*"),
        ({"title": "line\nforged"}, "line forged", "\nforged"),
        ({"new_status": "fa`iled"}, "`fa'iled`", "fa`iled"),
        ({"title": ""}, "*untitled*", "**"),
        ({"title": None}, "*untitled*", "None"),
        ({"reason": "<https://x.example|y>"}, "&lt;https://x.example|y&gt;", "<https"),
    ],
)
def test_values_cannot_format_mention_or_link(
    data: dict[str, object], slack_has: str, slack_lacks: str
) -> None:
    stored = {"title": "t", "old_status": "running", "new_status": "failed"} | data
    message = compose("job.failed", stored)
    assert slack_has in message.slack_text and slack_lacks not in message.slack_text
    assert "<script" not in compose("job.failed", {"title": "<script>"}).html
    assert "\n" not in message.subject


def test_email_notifications_are_a_family_that_needs_resend() -> None:
    keys = {"encryption_master_key": "A" * 43 + "=", "secrets_dir": None}
    assert status_of(load_settings(resend_api_key="r", **keys), "email_notifications").enabled
    off = status_of(load_settings(resend_api_key=None, **keys), "email_notifications")
    assert off.reason == (
        "email notifications are disabled on this worker: RESEND_API_KEY is not set"
    )
    assert status_of(load_settings(**keys), "slack_notifications").enabled


async def test_slack_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    emulator = SlackEmulator()
    token = "xoxb-secret-" + "5" * 20
    emulator.add_bot(token, "C1")
    server = serve_in_thread(emulator.app)
    try:
        hook = emulator.add_webhook(server.url)
        with caplog.at_level(logging.DEBUG):
            await slack.post(slack.SlackTarget(webhook_url=hook), "hi", api_url=server.url)
            await slack.post(
                slack.SlackTarget(bot_token=token, channel="C1"), "hi", api_url=f"{server.url}/api/"
            )
            with pytest.raises(slack.SlackRefused):
                await slack.post(
                    slack.SlackTarget(webhook_url="not a url" + hook), "hi", api_url=server.url
                )
    finally:
        server.stop()
    assert len(emulator.messages()) == 2
    assert token not in caplog.text and hook not in caplog.text
