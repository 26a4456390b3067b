"""Emulator of Resend's email API (send, retrieve, receiving) and its Svix-signed webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import mimetypes
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from html import escape
from importlib import resources
from itertools import islice
from string import Template
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devstack.emulators.faults import CONTROL_PREFIXES, Faults, relative_path
from devstack.emulators.runner import webhook_client

IDEMPOTENCY_WINDOW_S = 24 * 3600
_ERROR_NAMES = {
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    409: "invalid_idempotent_request",
    422: "validation_error",
    429: "rate_limit_exceeded",
}
Record = dict[str, Any]


def resend_error_body(status: int, message: str) -> dict[str, Any]:
    """Return an error body in Resend's shape."""
    return {
        "statusCode": status,
        "name": _ERROR_NAMES.get(status, "application_error"),
        "message": message,
    }


def _error(status: int, message: str, name: str | None = None) -> JSONResponse:
    body = resend_error_body(status, message)
    if name:
        body["name"] = name
    return JSONResponse(body, status_code=status)


class TeamRateLimit:
    """Resend's per-team rate limit: ``per_second`` API requests in each one-second window,
    shared by every API key; past it a 429 ``rate_limit_exceeded``. Every answer carries
    the ``ratelimit-limit`` / ``-remaining`` / ``-reset`` headers (IETF draft, as Resend
    sends them), a 429 ``retry-after`` too. Off (no limit, no headers) by default."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.per_second: int | None = None
        self.clock = clock
        self._lock = threading.Lock()
        self._window = 0  # the current window's second
        self._used = 0
        self._log: list[tuple[float, bool]] = []  # (time, accepted) of every API request

    def configure(self, per_second: int | None) -> None:
        """Limit the team to ``per_second`` requests a second (None: no limit); forget the
        requests seen so far."""
        with self._lock:
            self.per_second = per_second
            self._window, self._used = 0, 0
            self._log.clear()

    def admit(self) -> tuple[bool, dict[str, str]]:
        """Count one request: whether it is admitted, and the headers of its answer."""
        now = self.clock()
        with self._lock:
            if self.per_second is None:
                return True, {}
            window = int(now)
            if window != self._window:
                self._window, self._used = window, 0
            admitted = self._used < self.per_second
            self._used += admitted
            self._log.append((now, admitted))
            reset = str(max(1, math.ceil(window + 1 - now)))
            headers = {
                "ratelimit-limit": str(self.per_second),
                "ratelimit-remaining": str(self.per_second - self._used),
                "ratelimit-reset": reset,
            }
            if not admitted:
                headers["retry-after"] = reset
            return admitted, headers

    def windows(self) -> dict[int, dict[str, int]]:
        """Per one-second window: how many requests were accepted and how many refused."""
        with self._lock:
            counts: dict[int, dict[str, int]] = {}
            for at, admitted in self._log:
                seen = counts.setdefault(int(at), {"accepted": 0, "refused": 0})
                seen["accepted" if admitted else "refused"] += 1
            return counts

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap the API: the control and outbox pages are not Resend's and not limited."""

        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or relative_path(scope).startswith(CONTROL_PREFIXES):
                await app(scope, receive, send)
                return
            admitted, headers = self.admit()
            if not admitted:
                body = resend_error_body(
                    429,
                    f"Too many requests. You can only make {self.per_second} requests per "
                    "second. See rate limit response headers for more information. Or contact "
                    "support to increase rate limit.",
                )
                await JSONResponse(body, 429, headers=headers)(scope, receive, send)
                return

            async def with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [
                        *message.get("headers", []),
                        *((k.encode(), v.encode()) for k, v in headers.items()),
                    ]
                await send(message)

            await app(scope, receive, with_headers)

        return limited


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


_ADDR_SPEC = re.compile(
    r"[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_NAMED_ADDRESS = re.compile(r'(?:"[^"\r\n]*"|[^<>"\r\n]*?)\s*<([^<>\r\n]+)>')
_TAG_PART = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_RECIPIENTS = 50


def valid_address(value: Any) -> bool:
    """``email@example.com`` or ``Name <email@example.com>``, as Resend accepts them."""
    if not isinstance(value, str) or "\r" in value or "\n" in value:
        return False
    value = value.strip()
    if _ADDR_SPEC.fullmatch(value):
        return True
    named = _NAMED_ADDRESS.fullmatch(value)
    return bool(named and _ADDR_SPEC.fullmatch(named.group(1).strip()))


def send_refusal(params: Any) -> tuple[int, str, str] | None:
    """Why Resend refuses a ``POST /emails`` body: (status, error name, message), or None.

    Unknown fields are not refused: Resend's schema allows them (and ignores them).
    """
    if not isinstance(params, dict):
        return 422, "validation_error", "The request body must be a JSON object."
    for field in ("from", "to", "subject"):
        if not params.get(field):
            return 422, "missing_required_field", f"Missing `{field}` field."
    if not valid_address(params["from"]):
        return (
            422,
            "invalid_from_address",
            "Invalid `from` field. The email address needs to follow the "
            "`email@example.com` or `Name <email@example.com>` format.",
        )
    for field in ("to", "cc", "bcc", "reply_to"):
        value = params.get(field)
        if value is None:
            continue
        addresses = [value] if isinstance(value, str) else value
        if not isinstance(addresses, list) or not all(valid_address(a) for a in addresses):
            return 422, "validation_error", f"Invalid `{field}` field."
        if field == "to" and not 1 <= len(addresses) <= MAX_RECIPIENTS:
            return 422, "validation_error", f"`to` takes 1 to {MAX_RECIPIENTS} addresses."
    for field in ("subject", "text", "html"):
        if field in params and not isinstance(params[field], str | None):
            return 422, "validation_error", f"Invalid `{field}` field: expected a string."
    if not (params.get("text") or params.get("html") or params.get("template")):
        return 422, "missing_required_field", "Missing `html` or `text` field."
    headers = params.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in headers.items()
        ):
            return 422, "validation_error", "`headers` must be an object of strings."
        if any(c in text for k, v in headers.items() for text in (k, v) for c in "\r\n"):
            return 422, "validation_error", "Header names and values cannot contain newlines."
    for attachment in params.get("attachments") or []:
        if not isinstance(attachment, dict) or not (
            attachment.get("content") or attachment.get("path")
        ):
            return 422, "invalid_attachment", "Attachment must have either a `content` or `path`."
    for tag in params.get("tags") or []:
        if not isinstance(tag, dict) or not all(
            isinstance(tag.get(k), str) and _TAG_PART.fullmatch(tag[k]) for k in ("name", "value")
        ):
            return 422, "validation_error", "Tags may only contain ASCII letters, digits, _ or -."
    return None


def resend_message_id() -> str:
    """A Message-ID of the form Resend's (Amazon SES) mail carries."""
    return f"<0100{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000@email.amazonses.com>"


def sign_svix(secret: str, svix_id: str, timestamp: int, body: str) -> str:
    """Return the ``svix-signature`` header for a body, as ``resend.Webhooks.verify`` checks."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{svix_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def quote_original(sent: Record) -> str:
    """Quote a sent email's text the way a mail client does under a reply."""
    original = sent.get("text") or sent.get("html") or ""
    quoted = "\n".join("> " + line for line in original.splitlines())
    return f"On {sent['created_at']}, {sent['from']} wrote:\n{quoted}"


def quote_original_html(sent: Record) -> str:
    """Quote a sent email under an HTML reply the way Gmail does (``gmail_quote``)."""
    original = sent.get("html") or escape(sent.get("text") or "")
    return (
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f"On {escape(sent['created_at'])}, {escape(sent['from'])} wrote:<br></div>"
        '<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;'
        f'padding-left:1ex">{original}</blockquote></div>'
    )


class ResendEmulator:
    """In-memory Resend: records sends, serves inbound mail and delivers signed webhooks."""

    def __init__(self, api_key: str | None = None, *, seed: int = 0) -> None:
        self.api_key = api_key  # None accepts any bearer key
        self.faults = Faults(seed=seed, error_body=resend_error_body)
        self.rate_limit = TeamRateLimit()
        self._lock = threading.Lock()
        self._webhooks = webhook_client()
        self._sent: dict[str, Record] = {}
        self._idempotency: dict[str, tuple[str, str, float]] = {}
        self._received: dict[str, Record] = {}
        self._deliveries: list[Record] = []
        self._webhook: tuple[str, str] | None = None
        routes = [
            Route("/emails", self._send, methods=["POST"]),
            Route("/emails/receiving", self._list_received, methods=["GET"]),
            Route("/emails/receiving/{email_id}", self._get_received, methods=["GET"]),
            Route("/emails/{email_id}", self._get_sent, methods=["GET"]),
            Route("/_emulator/sent", self._http_inspect, methods=["GET"]),
            Route("/_emulator/inbound", self._http_inbound, methods=["POST"]),
            Route("/_emulator/emails/{email_id}/reply", self._http_reply, methods=["POST"]),
            Route("/_emulator/events", self._http_event, methods=["POST"]),
            Route("/_emulator/webhook", self._http_webhook, methods=["POST"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            Route("/_emulator/rate-limit", self._http_rate_limit, methods=["GET", "POST"]),
            self.faults.control_route(),
            Route("/_outbox", self._outbox, methods=["GET"]),
            Route("/_outbox/{email_id}", self._outbox_email, methods=["GET"]),
            Route("/_outbox/{email_id}/reply", self._outbox_reply, methods=["POST"]),
        ]
        self.app = self.faults.middleware(self.rate_limit.middleware(Starlette(routes=routes)))

    # -- control -------------------------------------------------------------------------

    def configure_webhook(self, url: str, secret: str) -> None:
        """Deliver webhook events to ``url``, signed with ``secret`` (``whsec_`` + base64)."""
        base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        with self._lock:
            self._webhook = (url, secret)

    def reset(self) -> None:
        """Forget every email, delivery, idempotency key and fault."""
        with self._lock:
            self._sent.clear()
            self._idempotency.clear()
            self._received.clear()
            self._deliveries.clear()
        self.faults.reset()
        self.rate_limit.configure(None)

    # -- inspection ----------------------------------------------------------------------

    def sent_emails(self, start: int = 0) -> list[Record]:
        """Return every accepted send, oldest first; from the ``start``-th on (0-based), so a
        poller can ask only for sends it has not seen yet."""
        with self._lock:
            return [dict(e) for e in islice(self._sent.values(), start, None)]

    def sent_email(self, email_id: str) -> Record:
        """Return one sent email (KeyError if unknown)."""
        with self._lock:
            return dict(self._sent[email_id])

    def sends_by_idempotency_key(self) -> dict[str, int]:
        """Return, per idempotency key, how many distinct sends were accepted (always 1)."""
        counts: dict[str, int] = {}
        for email in self.sent_emails():
            if key := email.get("idempotency_key"):
                counts[key] = counts.get(key, 0) + 1
        return counts

    def received_emails(self) -> list[Record]:
        """Return every inbound email, oldest first."""
        with self._lock:
            return [dict(e) for e in self._received.values()]

    def deliveries(self) -> list[Record]:
        """Return every webhook delivery attempt with its HTTP status (0: not reachable)."""
        with self._lock:
            return [dict(d) for d in self._deliveries]

    # -- inbound mail and events ---------------------------------------------------------

    def deliver_inbound(
        self,
        from_addr: str,
        to: str | list[str],
        subject: str,
        text: str | None,
        html: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        null_headers: bool = False,
        sign_with: str | None = None,
        timestamp: int | None = None,
    ) -> str:
        """Store an inbound email, POST ``email.received`` if a webhook is set; return its id.

        ``text`` None is an HTML-only email (Resend returns ``"text": null``);
        ``null_headers`` makes the Receiving API return ``"headers": null``, as Resend may.
        """
        email_id = str(uuid.uuid4())
        recipients = _as_list(to)
        message_id = f"<{uuid.uuid4()}@inbound.emulator.local>"
        all_headers = {"Message-ID": message_id, "From": from_addr, "To": ", ".join(recipients)}
        all_headers |= {"Subject": subject, **(headers or {})}
        email: Record = {
            "object": "email",
            "id": email_id,
            "to": recipients,
            "from": from_addr,
            "created_at": _now(),
            "subject": subject,
            "html": html,
            "text": text,
            "headers": None if null_headers else all_headers,
            "bcc": [],
            "cc": [],
            "reply_to": [],
            "received_for": recipients,
            "message_id": message_id,
            "attachments": [],
        }
        with self._lock:
            self._received[email_id] = email
        fields = ("created_at", "from", "to", "cc", "bcc", "received_for", "message_id", "subject")
        data = {"email_id": email_id} | {k: email[k] for k in fields} | {"attachments": []}
        self._post_event("email.received", data, sign_with=sign_with, timestamp=timestamp)
        return email_id

    def reply_to_email(
        self,
        email_id: str,
        text: str | None,
        from_addr: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        html: str | None = None,
        quote: bool = True,
        null_headers: bool | None = None,
        **sign: Any,
    ) -> str:
        """Deliver a reply to a sent email; return the reply's id.

        Like a mail client, the reply threads on the Message-ID the recipient received
        (Resend's, never one the sender asked for) and, with ``quote``, quotes the original
        under the text (``> ``) and under the HTML (Gmail's ``gmail_quote``). An HTML-only
        reply (``text`` None) comes back from the Receiving API with null text and headers.
        """
        sent = self.sent_email(email_id)
        delivered = {k.lower(): v for k, v in (sent.get("headers") or {}).items()}
        parent = sent["message_id"]
        references = " ".join([*delivered.get("references", "").split(), parent])
        reply_headers = {"In-Reply-To": parent, "References": references, **(headers or {})}
        subject = sent["subject"]
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
        if quote and text is not None:
            text = f"{text}\n\n{quote_original(sent)}"
        if quote and html is not None:
            html = f"{html}<br>{quote_original_html(sent)}"
        return self.deliver_inbound(
            from_addr or sent["to"][0],
            sent["reply_to"] or [sent["from"]],
            subject,
            text,
            html,
            headers=reply_headers,
            null_headers=text is None if null_headers is None else null_headers,
            **sign,
        )

    def deliver_event(
        self,
        event_type: str,
        email_id: str,
        *,
        sign_with: str | None = None,
        timestamp: int | None = None,
    ) -> int | None:
        """POST an event (``email.delivered``/``bounced``/``complained``...) about a sent email."""
        sent = self.sent_email(email_id)
        data: Record = {
            "created_at": sent["created_at"],
            "email_id": email_id,
            "from": sent["from"],
            "message_id": sent["message_id"],
            "to": sent["to"],
            "subject": sent["subject"],
            "tags": {t["name"]: t["value"] for t in sent.get("tags") or []},
        }
        if event_type == "email.bounced":
            data["bounce"] = {
                "message": "The recipient's mailbox does not exist.",
                "subType": "General",
                "type": "Permanent",
            }
        with self._lock:
            self._sent[email_id]["last_event"] = event_type.removeprefix("email.")
        return self._post_event(event_type, data, sign_with=sign_with, timestamp=timestamp)

    def _post_event(
        self, event_type: str, data: Record, *, sign_with: str | None, timestamp: int | None
    ) -> int | None:
        with self._lock:
            webhook = self._webhook
        if webhook is None:
            return None
        url, secret = webhook
        body = json.dumps({"type": event_type, "created_at": _now(), "data": data})
        svix_id = f"msg_{uuid.uuid4().hex}"
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "content-type": "application/json",
            "svix-id": svix_id,
            "svix-timestamp": str(ts),
            "svix-signature": sign_svix(sign_with or secret, svix_id, ts, body),
        }
        return self._deliver(url, body, headers, event_type, str(data["email_id"]))

    def redeliver(self, svix_id: str) -> int:
        """Send a delivery again, as Svix retries one its receiver did not take (same
        ``svix-id``, body and signature); returns the new attempt's status."""
        with self._lock:
            first = next(d for d in self._deliveries if d["svix_id"] == svix_id)
        return self._deliver(
            first["url"], first["body"], first["headers"], first["event_type"], first["email_id"]
        )

    def _deliver(
        self, url: str, body: str, headers: dict[str, str], event_type: str, email_id: str
    ) -> int:
        attempt: Record = {"event_type": event_type, "email_id": email_id, "url": url}
        attempt |= {"svix_id": headers["svix-id"], "at": _now(), "status": 0, "response": ""}
        attempt |= {"error": None, "body": body, "headers": headers}
        try:
            response = self._webhooks.post(url, content=body, headers=headers)
            attempt |= {"status": response.status_code, "response": response.text[:2000]}
        except httpx.HTTPError as exc:
            attempt["error"] = repr(exc)
        with self._lock:
            self._deliveries.append(attempt)
        return int(attempt["status"])

    # -- the vendor API ------------------------------------------------------------------

    def _auth_error(self, request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if key in ("", "None"):
            return _error(401, "Missing API key in the authorization header.")
        if self.api_key is not None and key != self.api_key:
            return _error(403, "API key is invalid.")
        return None

    async def _send(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        try:
            params = await request.json()
        except ValueError:
            return _error(422, "Invalid JSON body.", "validation_error")
        if refusal := send_refusal(params):
            status, name, message = refusal
            return _error(status, message, name)
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 256:
            return _error(
                400, "Idempotency key must be 1-256 characters.", "invalid_idempotency_key"
            )
        fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key is not None and (seen := self._idempotency.get(key)):
                seen_fingerprint, seen_id, at = seen
                if time.time() - at < IDEMPOTENCY_WINDOW_S:
                    if seen_fingerprint != fingerprint:
                        return _error(
                            409,
                            "Same idempotency key used with a different request payload. "
                            "Change your idempotency key or payload.",
                        )
                    return JSONResponse({"id": seen_id})
            email_id = str(uuid.uuid4())
            self._sent[email_id] = self._record(email_id, params, key)
            if key is not None:
                self._idempotency[key] = (fingerprint, email_id, time.time())
        return JSONResponse({"id": email_id})

    @staticmethod
    def _record(email_id: str, params: Record, key: str | None) -> Record:
        requested = dict(params.get("headers") or {})
        # Resend (through SES) gives every email its own Message-ID: one asked for is lost.
        delivered = {k: v for k, v in requested.items() if k.lower() != "message-id"}
        return {
            "object": "email",
            "id": email_id,
            "from": params["from"],
            "to": _as_list(params["to"]),
            "subject": params["subject"],
            "html": params.get("html"),
            "text": params.get("text"),
            "cc": _as_list(params.get("cc")),
            "bcc": _as_list(params.get("bcc")),
            "reply_to": _as_list(params.get("reply_to")),
            "headers": delivered,
            "requested_headers": requested,
            "attachments": list(params.get("attachments") or []),
            "tags": list(params.get("tags") or []),
            "scheduled_at": params.get("scheduled_at"),
            "created_at": _now(),
            "message_id": resend_message_id(),
            "last_event": "delivered",
            "idempotency_key": key,
        }

    async def _get_sent(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        with self._lock:
            email = self._sent.get(request.path_params["email_id"])
        if email is None:
            return _error(404, "Email not found")
        hidden = ("headers", "requested_headers", "attachments", "tags", "idempotency_key")
        body = {
            k: v or None if k in ("cc", "bcc", "reply_to") else v
            for k, v in email.items()
            if k not in hidden
        }
        return JSONResponse(body)

    async def _get_received(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        with self._lock:
            email = self._received.get(request.path_params["email_id"])
        return JSONResponse(email) if email else _error(404, "Email not found")

    async def _list_received(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        hidden = ("object", "html", "text", "headers")  # as Resend's list omits them
        data = [{k: v for k, v in e.items() if k not in hidden} for e in self.received_emails()]
        return JSONResponse({"object": "list", "has_more": False, "data": data[::-1]})

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_inspect(self, request: Request) -> Response:
        return JSONResponse(
            {
                "sent": self.sent_emails(),
                "sends_by_idempotency_key": self.sends_by_idempotency_key(),
                "received": self.received_emails(),
                "deliveries": self.deliveries(),
            }
        )

    async def _http_inbound(self, request: Request) -> Response:
        body = await request.json()
        email_id = await asyncio.to_thread(
            self.deliver_inbound,
            body["from"],
            body["to"],
            body["subject"],
            body.get("text"),
            body.get("html"),
            body.get("headers"),
        )
        return JSONResponse({"email_id": email_id, "delivery": self._delivery_for(email_id)})

    async def _http_reply(self, request: Request) -> Response:
        if request.path_params["email_id"] not in self._sent:
            return _error(404, "Email not found")
        body = await request.json()
        email_id = await asyncio.to_thread(
            partial(
                self.reply_to_email,
                request.path_params["email_id"],
                body.get("text"),
                body.get("from"),
                html=body.get("html"),
            )
        )
        return JSONResponse({"email_id": email_id, "delivery": self._delivery_for(email_id)})

    async def _http_event(self, request: Request) -> Response:
        body = await request.json()
        if body.get("email_id") not in self._sent:
            return _error(404, "Email not found")
        status = await asyncio.to_thread(self.deliver_event, body["type"], body["email_id"])
        return JSONResponse({"status": status})

    async def _http_webhook(self, request: Request) -> Response:
        body = await request.json()
        self.configure_webhook(body["url"], body["secret"])
        return JSONResponse({"url": body["url"]})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})

    async def _http_rate_limit(self, request: Request) -> Response:
        if request.method == "POST":
            self.rate_limit.configure((await request.json()).get("per_second"))
        windows = self.rate_limit.windows()
        return JSONResponse(
            {
                "per_second": self.rate_limit.per_second,
                "windows": {str(k): v for k, v in windows.items()},
            }
        )

    def _delivery_for(self, email_id: str) -> Record | None:
        """Return the latest webhook attempt about an email, if any."""
        matching = [d for d in self.deliveries() if d["email_id"] == email_id]
        return matching[-1] if matching else None

    # -- the human outbox ----------------------------------------------------------------

    async def _outbox(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        rows = [
            f"<tr><td>{escape(e['created_at'])}</td><td>{escape(', '.join(e['to']))}</td>"
            f"<td>{escape(e['subject'])}</td>"
            f'<td><a href="{escape(root)}/_outbox/{escape(e["id"])}">view / reply</a></td></tr>'
            for e in reversed(self.sent_emails())
        ]
        html = _template("resend_outbox.html").substitute(rows="\n".join(rows))
        return HTMLResponse(html)

    async def _outbox_email(self, request: Request, status: str = "") -> Response:
        root = request.scope.get("root_path", "")
        with self._lock:
            email = self._sent.get(request.path_params["email_id"])
        if email is None:
            return HTMLResponse("<p>No such email.</p>", status_code=404)
        html_body = email.get("html") or ""
        images = []
        for attachment in email["attachments"]:
            name = escape(str(attachment.get("filename") or attachment.get("path") or ""))
            data_uri = _data_uri(attachment)
            cid = attachment.get("content_id") or attachment.get("inline_content_id")
            if cid and data_uri:
                html_body = html_body.replace(f"cid:{cid}", data_uri)
            if data_uri and data_uri.startswith("data:image/"):
                images.append(
                    f'<figure><img class="inline" src="{escape(data_uri)}" alt="{name}">'
                    f"<figcaption>{name} {escape(str(cid or ''))}</figcaption></figure>"
                )
            else:
                images.append(f"<p>{name}</p>")
        page = _template("resend_email.html").substitute(
            outbox_url=escape(f"{root}/_outbox"),
            status=status,
            subject=escape(email["subject"]),
            sender=escape(email["from"]),
            to=escape(", ".join(email["to"])),
            reply_to=escape(", ".join(email["reply_to"])),
            created_at=escape(email["created_at"]),
            email_id=escape(email["id"]),
            text=escape(email.get("text") or ""),
            html_srcdoc=escape(html_body),
            attachments="\n".join(images) or "<p>None.</p>",
            reply_url=escape(f"{root}/_outbox/{email['id']}/reply"),
            reply_from=escape(email["to"][0]),
        )
        return HTMLResponse(page)

    async def _outbox_reply(self, request: Request) -> Response:
        if request.path_params["email_id"] not in self._sent:
            return HTMLResponse("<p>No such email.</p>", status_code=404)
        form = parse_qs((await request.body()).decode())
        text = form.get("text", ["APPROVE"])[0]
        sender = form.get("from", [""])[0] or None
        email_id = request.path_params["email_id"]
        reply_id = await asyncio.to_thread(self.reply_to_email, email_id, text, sender)
        delivery = self._delivery_for(reply_id)
        if delivery is None:
            outcome = "no webhook is configured, so nothing was delivered"
        else:
            outcome = f"webhook {delivery['url']} answered HTTP {delivery['status']}"
            outcome += f" ({delivery['error']})" if delivery["error"] else ""
        status = f'<p class="status">Reply {escape(reply_id)} stored; {escape(outcome)}.</p>'
        return await self._outbox_email(request, status=status)


def _template(name: str) -> Template:
    return Template(resources.files("devstack.emulators").joinpath("static", name).read_text())


def _data_uri(attachment: Record) -> str | None:
    content = attachment.get("content")
    if content is None:
        return None
    if isinstance(content, list):
        content = base64.b64encode(bytes(content)).decode()
    filename = str(attachment.get("filename") or "")
    content_type = attachment.get("content_type") or mimetypes.guess_type(filename)[0]
    return f"data:{content_type or 'application/octet-stream'};base64,{content}"
