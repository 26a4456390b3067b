"""The Slack emulator refuses what Slack refuses, as Slack says it, through the official
slack_sdk clients and raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient
from starlette.applications import Starlette
from starlette.routing import Mount

from devstack.emulators.runner import serve_in_thread
from devstack.emulators.slack import SlackEmulator

TOKEN = "xoxb-emulated-" + "1" * 20


@pytest.fixture(scope="module")
def slack() -> Iterator[tuple[SlackEmulator, str]]:
    emulator = SlackEmulator()
    server = serve_in_thread(Starlette(routes=[Mount("/slack", app=emulator.app)]))
    yield emulator, f"{server.url}/slack"
    server.stop()


@pytest.fixture(autouse=True)
def clean(slack: tuple[SlackEmulator, str]) -> None:
    slack[0].reset()


def test_webhook_posts_and_answers_ok(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    hook = emulator.add_webhook(url, "#ops")
    response = WebhookClient(hook, retry_handlers=[]).send(text="hello")
    assert (response.status_code, response.body) == (200, "ok")
    assert [(m["via"], m["channel"], m["text"]) for m in emulator.messages()] == [
        ("webhook", "#ops", "hello")
    ]


@pytest.mark.parametrize(
    ("body", "path", "status", "answer"),
    [
        (b"not json", None, 400, "invalid_payload"),
        (b"[1, 2]", None, 400, "invalid_payload"),
        (b"{}", None, 400, "no_text"),
        (b'{"text": ""}', None, 400, "no_text"),
        (b'{"text": "hi"}', "/services/T0/B0/forged", 404, "no_service"),
        (b'{"text": "hi"}', "/services/T0/B0", 404, None),  # not a webhook path at all
    ],
)
def test_webhook_refusals(
    slack: tuple[SlackEmulator, str],
    body: bytes,
    path: str | None,
    status: int,
    answer: str | None,
) -> None:
    emulator, url = slack
    hook = emulator.add_webhook(url)
    target = f"{url}{path}" if path else hook
    response = httpx.post(target, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    if answer:
        assert response.text == answer
    assert emulator.messages() == []


def test_chat_post_message_posts_and_names_the_message(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    emulator.add_bot(TOKEN, "C0ALERTS")
    client = WebClient(token=TOKEN, base_url=f"{url}/api/", retry_handlers=[])
    response = client.chat_postMessage(channel="C0ALERTS", text="hello")
    assert response["ok"] is True and response["ts"] == emulator.messages()[0]["ts"]


@pytest.mark.parametrize(
    ("token", "channel", "text", "error"),
    [
        (None, "C0ALERTS", "hi", "not_authed"),
        ("xoxb-forged", "C0ALERTS", "hi", "invalid_auth"),
        (TOKEN, "C0NOWHERE", "hi", "channel_not_found"),
        (TOKEN, "C0ALERTS", "", "no_text"),
    ],
)
def test_chat_post_message_refusals(
    slack: tuple[SlackEmulator, str], token: str | None, channel: str, text: str, error: str
) -> None:
    emulator, url = slack
    emulator.add_bot(TOKEN, "C0ALERTS")
    client = WebClient(token=token, base_url=f"{url}/api/", retry_handlers=[])
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=channel, text=text)
    assert refused.value.response.status_code == 200  # Slack refuses with 200 and ok: false
    assert refused.value.response.data == {"ok": False, "error": error}
    assert emulator.messages() == []


def test_rate_limited_post_is_429_with_retry_after(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    emulator.add_bot(TOKEN, "C0ALERTS")
    emulator.rate_limit_next(1, retry_after=7)
    client = WebClient(token=TOKEN, base_url=f"{url}/api/", retry_handlers=[])
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0ALERTS", text="hi")
    response = refused.value.response
    assert response.status_code == 429 and response.data["error"] == "ratelimited"
    assert {k.lower(): v for k, v in response.headers.items()}["retry-after"] in ("7", ["7"])
    assert client.chat_postMessage(channel="C0ALERTS", text="hi")["ok"] is True
    assert len(emulator.messages()) == 1


def test_form_encoded_token_is_accepted(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    emulator.add_bot(TOKEN, "C0ALERTS")
    response = httpx.post(
        f"{url}/api/chat.postMessage", data={"token": TOKEN, "channel": "C0ALERTS", "text": "x"}
    )
    assert response.json()["ok"] is True


def test_a_webhook_made_over_http_takes_posts(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    made = httpx.post(f"{url}/_emulator/webhooks", json={"channel": "#agency-alerts"}).json()
    assert made["url"].startswith(f"{url}/services/T")
    response = WebhookClient(made["url"], retry_handlers=[]).send(text="over http")
    assert (response.status_code, response.body) == (200, "ok")
    assert emulator.messages()[0]["channel"] == "#agency-alerts"
