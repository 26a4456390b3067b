"""The HTTP ingress: webhooks, approval links, Temporal's codec endpoint and health.
Thin: it wires requests to the handlers beside it in ``ingress/`` and answers with their
outcome."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.converter import PayloadCodec
from temporalio.service import RPCError

from activities.object_store import ObjectStore
from db.pool import Pool, ping
from ingress.api.routes import ApiDeps, create_api
from ingress.codec_server import CodecAccess, codec_routes
from ingress.decision_page import DecisionPageDeps, decision_routes
from ingress.inbound_email import InboundConfig, WebhookRejected, handle_resend_webhook
from ingress.inbound_higgsfield import WebhookRefused, deliver_hint, parse_hint
from workers.logging import get_logger

log = get_logger("ingress.app")


@dataclass
class IngressDeps:
    """What the ingress needs, built by the process that serves it."""

    pool: Pool
    client: Client
    inbound: InboundConfig
    max_body_bytes: int
    webhook_keys: str  # verifies Higgsfield webhook URL tokens (not the approval-token key)
    codec: PayloadCodec  # the codec endpoint's: the same as the worker's
    codec_access: CodecAccess
    # Which vendor families these settings enable (workers/families.py), for /healthz.
    families: dict[str, dict[str, object]] = field(default_factory=dict)
    api: ApiDeps | None = None  # the app's HTTP API at /v1 (ingress/api/)
    objects: ObjectStore | None = None  # screenshots in object storage (decision page)


class InProcessServer(uvicorn.Server):
    """uvicorn for a process that handles its own signals (the dev stack, tests)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class BodyTooLarge(Exception):
    """The request body is over the limit."""


def body_too_large(*_: object) -> Response:
    """The 413 answer; the connection is closed so the rest of the body is never read."""
    return JSONResponse({"error": "request body too large"}, 413, headers={"Connection": "close"})


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes before reading them whole.

    The app must map ``BodyTooLarge`` to ``body_too_large`` (Starlette's
    ``exception_handlers``): raised while a handler reads the body, it would otherwise
    become Starlette's 500 before this middleware could answer.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await body_too_large()(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await body_too_large()(scope, receive, send)


def create_app(deps: IngressDeps) -> ASGIApp:
    """The ingress ASGI app."""

    async def healthz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await ping(deps.pool)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await deps.client.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:
            checks["temporal"] = f"error: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "degraded", **checks, "families": deps.families},
            200 if healthy else 503,
        )

    async def resend_webhook(request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            answer = await handle_resend_webhook(deps.pool, deps.client, deps.inbound, raw, headers)
        except WebhookRejected as exc:
            log.warning("resend webhook rejected", reason=exc.message, status=exc.status_code)
            return JSONResponse({"error": exc.message}, exc.status_code)
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            log.error("temporal unavailable for a webhook", error=str(exc))
            return JSONResponse({"error": "temporarily unavailable, retry"}, 503)
        return JSONResponse(answer)

    async def higgsfield_webhook(request: Request) -> Response:
        body = await request.body()
        try:
            generation_id, hint = parse_hint(
                deps.webhook_keys,
                request.path_params["generation_id"],
                request.query_params.get("token", ""),
                body,
            )
            outcome = await deliver_hint(deps.client, generation_id, hint)
        except WebhookRefused as exc:
            log.warning("higgsfield webhook refused", reason=exc.message)
            return JSONResponse({"error": exc.message}, exc.status_code)
        except RPCError:
            return JSONResponse({"error": "temporarily unavailable, retry"}, 503)
        return JSONResponse({"outcome": outcome})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/webhooks/resend", resend_webhook, methods=["POST"]),
        *decision_routes(
            DecisionPageDeps(deps.pool, deps.client, deps.inbound.token_secret, deps.objects)
        ),
        Route("/webhooks/higgsfield/{generation_id:str}", higgsfield_webhook, methods=["POST"]),
        *codec_routes(deps.codec, deps.codec_access),
    ]
    if deps.api is not None:
        routes.append(Mount("/v1", app=create_api(deps.api)))
    app = Starlette(routes=routes, exception_handlers={BodyTooLarge: body_too_large})
    return BodyLimit(app, deps.max_body_bytes)
