"""Approval emails through Resend: request, reminder and clarification.

Every send carries a Resend idempotency key derived from what it is about, so a
retried activity, or one re-run after a worker crash, never sends a second email.

Resend gives every email its own Message-ID (a custom ``Message-ID`` header is replaced
on the way out through SES) and returns it as ``message_id`` from ``GET /emails/{id}``
and in its webhooks. That id is what the approver's mail client sees, so it is the one
recorded and threaded on (``In-Reply-To``/``References`` of reminders and clarifications).
"""

from __future__ import annotations

import asyncio
import base64
import math
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID

import httpx
import resend
from pydantic import BaseModel
from resend.http_client_async import AsyncHTTPClient
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities import approval_tokens
from activities.approval_tokens import Purpose
from activities.email_templates import render_html, render_text
from activities.failures import classified
from activities.object_store import ObjectStore
from activities.screenshots import read_screenshot
from db import approval_teams, approvals
from db.approvals import EmailContext
from db.pool import Pool


@dataclass(frozen=True)
class EmailConfig:
    """Where mail comes from, where replies and links lead, and the token secret."""

    sender: str
    inbound_domain: str
    ingress_url: str
    token_secret: str


class ApprovalEmailInput(BaseModel):
    """Which approval to write about."""

    approval_id: UUID
    kind: Literal["request", "reminder"] = "request"
    # The approver's seat (issue 27: each approver gets their own email, links and reply
    # address); None: the approval's one approver.
    seat: int | None = None


class ApprovalEmailResult(BaseModel):
    """Resend's id of the email."""

    resend_message_id: str


class PooledResendHTTP(AsyncHTTPClient):
    """The Resend SDK's async HTTP interface over one long-lived httpx client per event loop.

    The SDK's default opens a new httpx client, with a new TLS context, for every request:
    measured at ~18 % of a loaded worker's CPU. Connections are reused instead.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self._timeout = timeout
        # httpx connections belong to the event loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = httpx.AsyncClient(timeout=self._timeout)
        return client

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: dict[str, object] | list[object] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """One request; transport errors surface as the SDK's (retryable) ``ResendError``."""
        response = await self._client().request(
            method,
            url,
            headers=headers,
            json=json if data is None and files is None else None,
            files=files,
            data=data,
        )
        return response.content, response.status_code, response.headers


_RESEND_HTTP = PooledResendHTTP()


def configure_resend(api_key: str, api_url: str) -> None:
    """Point the Resend SDK (module-level configuration) at the API and key, with pooled
    connections."""
    resend.api_key = api_key
    resend.api_url = api_url.rstrip("/")
    resend.default_async_http_client = _RESEND_HTTP


# A 429 whose wait is longer than this is waited out by Temporal (next_retry_delay), not
# inline; without a hint from Resend the retry waits one window (its limit is per second).
MAX_THROTTLE_WAIT = timedelta(minutes=1)
DEFAULT_THROTTLE_WAIT = timedelta(seconds=1)
# 429s that waiting a second does not cure: they keep Temporal's backoff, and show as failures.
QUOTA_ERRORS = frozenset({"daily_quota_exceeded", "monthly_quota_exceeded"})
T = TypeVar("T")


def throttle_delay(exc: Exception) -> timedelta | None:
    """How long Resend asks to wait after a 429 (``retry-after``, else ``ratelimit-reset``,
    in seconds), or None when ``exc`` is not its rate limit."""
    if str(getattr(exc, "code", "")) != "429" or getattr(exc, "error_type", "") in QUOTA_ERRORS:
        return None
    headers = {str(k).lower(): str(v) for k, v in (getattr(exc, "headers", None) or {}).items()}
    for name in ("retry-after", "ratelimit-reset"):
        try:
            seconds = float(headers[name])
        except (KeyError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return min(timedelta(seconds=seconds), MAX_THROTTLE_WAIT)
    return DEFAULT_THROTTLE_WAIT


async def call_resend(call: Callable[[], Awaitable[T]], *, wait_up_to: timedelta) -> T:
    """One Resend call; a 429 asking to wait at most ``wait_up_to`` is waited out and the
    call made once more (the ingress: a reply must not wait for the webhook's redelivery)."""
    try:
        return await call()
    except resend.exceptions.ResendError as exc:
        delay = throttle_delay(exc)
        if delay is None or delay > wait_up_to:
            raise
    await asyncio.sleep(delay.total_seconds())
    return await call()


def classify_resend_error(exc: Exception) -> Exception:
    """Retry rate limits (after the wait Resend names), server errors and concurrent
    idempotent requests; not the rest."""
    code = int(getattr(exc, "code", 500) or 500)
    kind = str(getattr(exc, "error_type", ""))
    if (delay := throttle_delay(exc)) is not None:
        # Expected under load, not a failure: benign (logged at debug, no failure metric),
        # retried by Temporal once the window Resend names has passed.
        return ApplicationError(
            f"Resend rate limit: retry in {delay.total_seconds():g} s",
            type="ResendRateLimited",
            next_retry_delay=delay,
            category=ApplicationErrorCategory.BENIGN,
        )
    if code == 429 or code >= 500 or kind == "concurrent_idempotent_requests":
        return exc
    return ApplicationError(
        f"Resend refused the email ({code} {kind}): {exc}", type="EmailRejected", non_retryable=True
    )


async def sent_message_id(email_id: str) -> str:
    """The Message-ID Resend gave a sent email (``GET /emails/{id}``)."""
    with classified(resend.exceptions.ResendError, classify_resend_error):
        email = await resend.Emails.get_async(email_id)
    message_id = str(email.get("message_id") or "")
    if not message_id:
        # Retryable: the retry's send returns the same email (idempotency key), not a new one.
        raise ApplicationError(f"Resend has no Message-ID for email {email_id} yet")
    return message_id


APPROVAL_TAG = "approval_id"
SEAT_TAG = "approval_seat"


async def send_email(
    params: dict[str, Any], idempotency_key: str, *, wait_up_to: timedelta = timedelta(0)
) -> str:
    """Send through Resend with an idempotency key; return Resend's email id. A 429 is
    waited out inline when short enough (``wait_up_to``), else raised as a retryable
    ``ResendRateLimited`` carrying the wait."""
    with classified(resend.exceptions.ResendError, classify_resend_error):
        response = await call_resend(
            lambda: resend.Emails.send_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
            wait_up_to=wait_up_to,
        )
    return str(response["id"])


class EmailActivities:
    """Writes approval emails; reads the rows it needs, records what it sent."""

    def __init__(self, pool: Pool, config: EmailConfig, store: ObjectStore | None = None) -> None:
        self.pool = pool
        self.config = config
        self.store = store  # where screenshots are, when not in their blobs rows

    @activity.defn
    async def send_approval_email(self, request: ApprovalEmailInput) -> ApprovalEmailResult:
        """Send the request (or reminder) email of an approval, once."""
        async with self.pool.connection() as conn:
            ctx = await approvals.email_context(conn, request.approval_id)
            if ctx is None:
                raise ApplicationError(
                    f"approval {request.approval_id} not found", non_retryable=True
                )
            if not ctx.approver_email:
                raise ApplicationError(
                    f"approval {request.approval_id} has no approver email: set the job owner's "
                    "profiles.email_address or pass approver_email",
                    type="NoApprover",
                    non_retryable=True,
                )
            seat_message_id = None
            if request.seat is not None:
                seat = await approval_teams.get_approver(conn, request.approval_id, request.seat)
                if seat is None:
                    raise ApplicationError(
                        f"approval {request.approval_id} has no approver seat {request.seat}",
                        non_retryable=True,
                    )
                ctx = ctx.model_copy(update={"approver_email": seat.email})
                seat_message_id = seat.email_message_id
            thread = await approvals.job_thread(conn, ctx.job_id, request.approval_id)
            screenshot = None
            if ctx.screenshot_url and str(ctx.screenshot_url).startswith("blob:"):
                screenshot = await read_screenshot(
                    conn, self.store, UUID(str(ctx.screenshot_url)[5:])
                )
        first_seat = not request.seat  # None or 0: the approval's own approver
        if request.kind == "reminder":
            earlier = ctx.email_message_id if first_seat else seat_message_id
            if earlier:
                thread = [*thread, str(earlier)]
        params = self._compose(ctx, request.kind, thread, screenshot)
        # Resend returns the tags in its delivery events: a bounce that arrives before the
        # email's id is recorded below still finds its approval (and its approver).
        params["tags"] = [{"name": APPROVAL_TAG, "value": str(request.approval_id)}]
        if request.seat is not None:
            params["tags"].append({"name": SEAT_TAG, "value": str(request.seat)})
        key = f"approval-{request.kind}/{request.approval_id}"
        email_id = await send_email(params, key if first_seat else f"{key}/{request.seat}")
        if request.kind == "request":
            message_id = await sent_message_id(email_id)
        async with self.pool.connection() as conn:
            if request.kind == "request":
                if first_seat:
                    await approvals.record_request_email(
                        conn,
                        request.approval_id,
                        resend_message_id=email_id,
                        email_message_id=message_id,
                    )
                if request.seat is not None:
                    await approval_teams.record_approver_email(
                        conn,
                        request.approval_id,
                        request.seat,
                        resend_message_id=email_id,
                        email_message_id=message_id,
                    )
            else:
                if first_seat:
                    await approvals.record_reminder(conn, request.approval_id)
                if request.seat is not None:
                    await approval_teams.record_approver_reminder(
                        conn, request.approval_id, request.seat
                    )
        activity.logger.info("approval email sent", extra={"approval_id": str(request.approval_id)})
        return ApprovalEmailResult(resend_message_id=email_id)

    def _compose(
        self,
        ctx: EmailContext,
        kind: str,
        thread: list[str],
        screenshot: tuple[str, bytes] | None,
    ) -> dict[str, Any]:
        approval_id = ctx.id
        approver = str(ctx.approver_email)
        expires_at = ctx.expires_at
        secret = self.config.token_secret

        def token(purpose: Purpose) -> str:
            return approval_tokens.sign(secret, approval_id, approver, purpose, expires_at)

        deadline = expires_at.strftime("%a %d %b %Y %H:%M UTC")
        what = str(ctx.description or ctx.action_type)
        prefix = "Reminder: approval" if kind == "reminder" else "Approval"
        subject = f"{prefix} needed by {deadline}: {what} ({ctx.platform})"
        words = {
            "what": what,
            "action_type": ctx.action_type,
            "platform": ctx.platform,
            "job_title": ctx.job_title or "",
            "job_id": ctx.job_id,
            "deadline": deadline,
            "approve_url": f"{self.config.ingress_url}/approvals/{token(Purpose.APPROVE_LINK)}",
            "reject_url": f"{self.config.ingress_url}/approvals/{token(Purpose.REJECT_LINK)}",
        }
        text = render_text("approval_email.txt", **words)
        body = render_html("approval_email.html", **words)
        params: dict[str, Any] = {
            "from": self.config.sender,
            "to": [approver],
            "subject": subject,
            "text": text,
            "reply_to": [
                approval_tokens.reply_address(token(Purpose.REPLY), self.config.inbound_domain)
            ],
        }
        if thread:  # Resend's Message-IDs of the job's earlier emails, oldest first
            params["headers"] = {"In-Reply-To": thread[-1], "References": " ".join(thread)}
        if screenshot:
            content_type, data = screenshot
            body += render_html("approval_email_screenshot.html")
            params["attachments"] = [
                {
                    "filename": "screenshot.png",
                    "content": base64.b64encode(data).decode(),
                    "content_type": content_type,
                    "content_id": "screenshot",
                }
            ]
        params["html"] = body
        return params
