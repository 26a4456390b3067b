"""The HTTP ingress: webhooks, approval links and health. Thin: it wires requests to
the handlers in ``activities/`` and answers with their outcome."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities import approval_tokens
from activities.approval_tokens import InvalidToken, Purpose
from activities.decisions import deliver_decision
from activities.inbound_email import InboundConfig, WebhookRejected, handle_resend_webhook
from activities.inbound_higgsfield import WebhookRefused, deliver_hint, parse_hint
from db import approvals
from db.pool import Pool
from db.transitions import RowNotFound
from workers.api.routes import ApiDeps, create_api
from workers.logging import get_logger
from workflows.models.approval import Decision

log = get_logger("workers.ingress")


@dataclass
class IngressDeps:
    """What the ingress needs, built by the process that serves it."""

    pool: Pool
    client: Client
    inbound: InboundConfig
    max_body_bytes: int
    api: ApiDeps | None = None  # the app's HTTP API at /v1 (workers/api/)


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
            async with deps.pool.connection() as conn:
                await conn.execute("SELECT 1")
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
            {"status": "ok" if healthy else "degraded", **checks}, 200 if healthy else 503
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

    async def approval_link(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            approval, content = await _verified_link(deps, token)
        except (InvalidToken, RowNotFound):
            return _page("Link not valid", "This link is invalid or has expired.", 403)
        decision: Decision = "approve" if content.purpose is Purpose.APPROVE_LINK else "reject"
        if request.method == "GET":
            return _confirm_page(approval, decision)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        note = (form.get("note") or [""])[0].strip()[:2000] or None
        try:
            result = await deliver_decision(
                deps.client,
                approval,
                decision=decision,
                decided_by=approval.approver_email or "",
                channel="link",
                note=note,
                update_id=f"link-{approval.id}-{decision}",
            )
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            return _page("Try again", "The service is busy; please try again shortly.", 503)
        if not result.applied:
            return _page("Nothing changed", result.message, 409)
        return _page("Thank you", f"Your decision was recorded: {result.status}.", 200)

    async def higgsfield_webhook(request: Request) -> Response:
        body = await request.body()
        try:
            generation_id, hint = parse_hint(
                deps.inbound.token_secret,
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
        Route("/approvals/{token:str}", approval_link, methods=["GET", "POST"]),
        Route("/webhooks/higgsfield/{generation_id:str}", higgsfield_webhook, methods=["POST"]),
    ]
    if deps.api is not None:
        routes.append(Mount("/v1", app=create_api(deps.api)))
    app = Starlette(routes=routes, exception_handlers={BodyTooLarge: body_too_large})
    return BodyLimit(app, deps.max_body_bytes)


async def _verified_link(
    deps: IngressDeps, token: str
) -> tuple[approvals.ApprovalRow, approval_tokens.ApprovalToken]:
    content = approval_tokens.peek(token)
    if content.purpose not in (Purpose.APPROVE_LINK, Purpose.REJECT_LINK):
        raise InvalidToken("not a link token")
    async with deps.pool.connection() as conn:
        approval = await approvals.get_approval(conn, content.approval_id)
    approval_tokens.verify(
        deps.inbound.token_secret,
        token,
        approval.approver_email or "",
        purpose=content.purpose,
        now=datetime.now(UTC),
    )
    return approval, content


def _page(title: str, message: str, status: int) -> HTMLResponse:
    e = html.escape
    return HTMLResponse(
        f"<!doctype html><title>{e(title)}</title><h1>{e(title)}</h1><p>{e(message)}</p>", status
    )


def _confirm_page(approval: approvals.ApprovalRow, decision: str) -> HTMLResponse:
    e = html.escape
    what = e(approval.description or approval.action_type or "the action")
    if approval.status != "pending":
        return _page("Nothing to decide", f"This approval is already {approval.status}.", 409)
    body = (
        f"<!doctype html><title>Confirm: {decision}</title>"
        f"<h1>{decision.capitalize()} this action?</h1><p>{what}</p>"
        f"<form method='post'><label>Note (optional)<br><textarea name='note'></textarea></label>"
        f"<br><button type='submit'>Confirm: {decision}</button></form>"
        "<p>Nothing is decided until you press the button.</p>"
    )
    return HTMLResponse(body)
