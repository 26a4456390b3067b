"""Emulator of Slack's incoming webhooks and ``chat.postMessage``, as strict as Slack.

Incoming webhooks (``POST /services/T…/B…/…``) answer ``ok`` (200, text/plain), or
``invalid_payload`` (400: not JSON), ``no_text`` (400: no text, blocks or attachments),
``no_service`` (404: a webhook it does not know). ``chat.postMessage`` (``POST
/api/chat.postMessage``, JSON or form, token as a bearer header or ``token`` field)
answers 200 with ``{"ok": true, "ts": ...}`` or ``{"ok": false, "error": ...}``:
``not_authed`` (no token), ``invalid_auth`` (unknown token), ``channel_not_found``,
``no_text``; and 429 with ``Retry-After`` and ``ratelimited`` when told to.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults

Record = dict[str, Any]


class SlackEmulator:
    """In-memory Slack: known webhooks and bot tokens, and every message they posted."""

    def __init__(self) -> None:
        self.faults = Faults()
        self._lock = threading.Lock()
        self._webhooks: dict[str, str] = {}  # path → channel
        self._tokens: set[str] = set()
        self._channels: set[str] = set()
        self._messages: list[Record] = []
        self._rate_limited: list[float] = []  # Retry-After of the next refused posts
        self._errors: list[str] = []  # errors of the next posts, answered after posting
        self._seq = 0
        self.answer_delay_s = 0.0  # after recording a message, before answering
        routes = [
            Route("/services/{team}/{bot}/{secret}", self._webhook, methods=["POST"]),
            Route("/api/chat.postMessage", self._post_message, methods=["POST"]),
            Route("/_emulator/messages", self._http_messages, methods=["GET"]),
            Route("/_emulator/webhooks", self._http_add_webhook, methods=["POST"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control -------------------------------------------------------------------------

    def add_webhook(self, base_url: str, channel: str = "#alerts") -> str:
        """A new incoming webhook posting to ``channel``; its URL under ``base_url``."""
        path = f"/services/T{_id()}/B{_id()}/{secrets.token_urlsafe(18)}"
        with self._lock:
            self._webhooks[path] = channel
        return f"{base_url.rstrip('/')}{path}"

    def add_bot(self, token: str, *channels: str) -> None:
        """A bot token that may post to ``channels`` (ids like ``C123`` or ``#names``)."""
        with self._lock:
            self._tokens.add(token)
            self._channels.update(channels)

    def error_next(self, error: str) -> None:
        """Answer the next chat.postMessage with ``{"ok": false, "error": error}`` after
        posting it, as Slack's ``internal_error`` may (it says the post may have happened)."""
        with self._lock:
            self._errors.append(error)

    def rate_limit_next(self, n: int = 1, retry_after: float = 30) -> None:
        """Refuse the next ``n`` chat.postMessage calls with 429 ``ratelimited``."""
        with self._lock:
            self._rate_limited.extend([retry_after] * n)

    def reset(self) -> None:
        """Forget messages, webhooks, tokens and faults."""
        with self._lock:
            self._webhooks.clear()
            self._tokens.clear()
            self._channels.clear()
            self._messages.clear()
            self._rate_limited.clear()
            self._errors.clear()
        self.answer_delay_s = 0.0
        self.faults.reset()

    # -- inspection ----------------------------------------------------------------------

    def messages(self) -> list[Record]:
        """Every message posted, oldest first."""
        with self._lock:
            return [dict(m) for m in self._messages]

    # -- the API -------------------------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        p = request.path_params
        with self._lock:
            channel = self._webhooks.get(f"/services/{p['team']}/{p['bot']}/{p['secret']}")
        if channel is None:
            return PlainTextResponse("no_service", status_code=404)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            return PlainTextResponse("no_text", status_code=400)
        self._record("webhook", channel, body)
        await self._delay()
        return PlainTextResponse("ok")

    async def _post_message(self, request: Request) -> Response:
        args = await _arguments(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        token = token or str(args.get("token") or "")
        if not token:
            return _fail("not_authed")
        with self._lock:
            known = token in self._tokens
            limited = self._rate_limited.pop(0) if known and self._rate_limited else None
            channel_ok = str(args.get("channel") or "") in self._channels
        if not known:
            return _fail("invalid_auth")
        if limited is not None:
            return JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": str(int(limited))},
            )
        if not channel_ok:
            return _fail("channel_not_found")
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return _fail("no_text")
        record = self._record("chat.postMessage", str(args["channel"]), args)
        await self._delay()
        with self._lock:
            error = self._errors.pop(0) if self._errors else None
        if error:
            return _fail(error)
        return JSONResponse(
            {
                "ok": True,
                "channel": record["channel"],
                "ts": record["ts"],
                "message": {"type": "message", "text": record["text"], "ts": record["ts"]},
            }
        )

    def _record(self, via: str, channel: str, body: dict[str, Any]) -> Record:
        with self._lock:
            self._seq += 1
            record = {
                "via": via,
                "channel": channel,
                "text": str(body.get("text") or ""),
                "ts": f"{int(time.time())}.{self._seq:06d}",
            }
            self._messages.append(record)
        return record

    async def _delay(self) -> None:
        if self.answer_delay_s > 0:
            await asyncio.sleep(self.answer_delay_s)

    async def _http_messages(self, request: Request) -> JSONResponse:
        return JSONResponse({"messages": self.messages()})

    async def _http_add_webhook(self, request: Request) -> JSONResponse:
        body = await request.json() if await request.body() else {}
        channel = str(body.get("channel") or "#alerts")
        base = str(request.url).split("?")[0].removesuffix("/_emulator/webhooks")
        return JSONResponse({"url": self.add_webhook(base, channel)})

    async def _http_reset(self, request: Request) -> JSONResponse:
        self.reset()
        return JSONResponse({"reset": True})


async def _arguments(request: Request) -> dict[str, Any]:
    """chat.postMessage's arguments: a JSON body, or a form (as Slack takes either)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}


def _fail(error: str) -> JSONResponse:
    """Slack's Web API refuses with HTTP 200 and ``ok: false``."""
    return JSONResponse({"ok": False, "error": error})


def _id() -> str:
    return secrets.token_hex(4).upper()
