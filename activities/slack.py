"""Posting to Slack with the official ``slack_sdk``: an incoming webhook, or a bot token
and a channel through ``chat.postMessage``.

Slack has no idempotency key, so a post is made at most once (the caller claims it
first). Every answer is put in one of three kinds: ``SlackRefused`` (Slack said no: nothing
was posted; a retry cannot help, except ``ratelimited``, which names its wait),
``SlackUnknown`` (no answer, or a server error: it may have been posted) or a success.
The SDK's own retries are off (a retry after a lost answer could post twice), and its
logger is silenced: it would print the token and the webhook URL.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

SLACK_TIMEOUT_S = 10
# Web API errors after which "it's possible some aspect of the operation succeeded"
# (Slack's words): the message may have been posted.
_MAYBE_POSTED = frozenset(
    {"internal_error", "fatal_error", "request_timeout", "service_unavailable"}
)


# The SDK logs request headers (the token) at debug and the URL (the webhook's secret) in
# its errors: its logger is silenced; its errors reach us as exceptions, classified below.
class _Silent(logging.Logger):
    """A logger that drops every record; not registered, so no logging configuration
    (``dictConfig``, a level set on the root) turns it back on."""

    def isEnabledFor(self, level: int) -> bool:
        return False

    def handle(self, record: logging.LogRecord) -> None:
        return None


_QUIET = _Silent("activities.slack.sdk")


class SlackRefused(Exception):
    """Slack answered that it posted nothing (``retry_after``: it asks to try again later)."""

    def __init__(self, error: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"Slack refused the message ({status} {error})")
        self.error = error
        self.status = status
        self.retry_after = retry_after


class SlackUnknown(Exception):
    """Slack's answer did not say whether the message was posted."""


@dataclass(frozen=True)
class SlackTarget:
    """Where a message goes: a webhook URL, or a bot token and a channel."""

    webhook_url: str | None = None
    bot_token: str | None = None
    channel: str | None = None


def _retry_after(headers: object) -> float | None:
    """Slack's Retry-After header (seconds), if it sent one."""
    if not isinstance(headers, dict):
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(float(str(raw)), 1.0)
            except ValueError:
                return None
    return None


def _post_webhook(url: str, text: str) -> str | None:
    client = WebhookClient(url, timeout=SLACK_TIMEOUT_S, logger=_QUIET, retry_handlers=[])
    try:
        response = client.send(text=text, unfurl_links=False, unfurl_media=False)
    except SlackClientError:  # its message holds the URL, a secret: not passed on
        raise SlackRefused("invalid_webhook_url", 0) from None
    except (URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise _unanswered(exc) from None
    if response.status_code == 200 and response.body == "ok":
        return None  # a webhook names no message
    if response.status_code >= 500:
        raise SlackUnknown(f"Slack answered {response.status_code}")
    error = (response.body or "").strip()[:100] or "no_error_named"
    retry = _retry_after(response.headers) if response.status_code == 429 else None
    raise SlackRefused(error, response.status_code, retry)


def _post_message(api_url: str, token: str, channel: str, text: str) -> str | None:
    client = WebClient(
        token=token, base_url=api_url, timeout=SLACK_TIMEOUT_S, logger=_QUIET, retry_handlers=[]
    )
    try:
        response = client.chat_postMessage(
            channel=channel, text=text, unfurl_links=False, unfurl_media=False
        )
    except SlackApiError as exc:
        status = int(exc.response.status_code)
        if status >= 500:
            raise SlackUnknown(f"Slack answered {status}") from None
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or "no_error_named")[:100]
        if error in _MAYBE_POSTED:
            raise SlackUnknown(f"Slack answered {error}") from None
        retry = _retry_after(exc.response.headers) if status == 429 else None
        if error == "ratelimited" and retry is None:
            retry = 60.0
        raise SlackRefused(error, status, retry) from None
    except (URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise _unanswered(exc) from None
    ts = response.get("ts")
    return str(ts) if ts else None


def _unanswered(exc: BaseException) -> Exception:
    """A connection refused before anything was sent posted nothing; anything else may
    have (the request left, the answer did not come)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError | socket.gaierror):
        return SlackRefused("connection_refused", 0, retry_after=30.0)
    return SlackUnknown(f"no answer from Slack ({type(reason).__name__})")


async def post(target: SlackTarget, text: str, *, api_url: str) -> str | None:
    """Post ``text``; Slack's message ts (None for a webhook). Raises ``SlackRefused`` or
    ``SlackUnknown``. The SDK's clients are synchronous: each call runs in a thread."""
    if target.webhook_url:
        return await asyncio.to_thread(_post_webhook, target.webhook_url, text)
    assert target.bot_token and target.channel
    return await asyncio.to_thread(_post_message, api_url, target.bot_token, target.channel, text)


def escape(text: str) -> str:
    """Slack's three control characters escaped, so a value can neither mention
    (``<!channel>``) nor link (``<http://...|...>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
