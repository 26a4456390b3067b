"""The ingress's metrics and server spans: one ASGI middleware around the whole app.

Every request is counted by route, method and status, timed, and, when it is refused
(a 4xx, or a 503 asking the sender to retry), counted by reason: the API's stable error
code (``{"error": {"code": ...}}``), else a name for the status. Routes are the app's
templates (``/approvals/{token}``), never the path: paths carry approval tokens, and a
label per token would grow without end. The span of a request continues the caller's
trace (W3C ``traceparent``) and is the parent of what the handler does: the Temporal
update or start (the client's OpenTelemetry plugin carries it into the workflow) and
the vendor calls (httpx's instrumentation). Without a tracer provider the spans are
no-ops; without a metrics endpoint the meter is.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime

UNMATCHED = "unmatched"  # no route: 404s of scanners must not make a label each
ERROR_BODY_LIMIT = 4096
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")
STATUS_REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class IngressMetrics:
    """The ingress's instruments on one meter."""

    def __init__(self, meter: MetricMeter) -> None:
        self.requests = meter.create_counter(
            "orchestrator_ingress_requests", "Requests answered, by route, method and status"
        )
        self.seconds = meter.create_histogram_float(
            "orchestrator_ingress_request_seconds", "Time to answer a request, by route", "s"
        )
        self.refusals = meter.create_counter(
            "orchestrator_ingress_refusals", "Requests refused (4xx, 503), by route and reason"
        )


_instruments: dict[int, IngressMetrics] = {}


def ingress_metrics(meter: MetricMeter) -> IngressMetrics:
    """One set of instruments per meter (a runtime registers a name once)."""
    found = _instruments.get(id(meter))
    if found is None:
        found = _instruments[id(meter)] = IngressMetrics(meter)
    return found


def client_meter(client: Client) -> MetricMeter:
    """The meter of the runtime ``client`` uses (a no-op one without metrics)."""
    runtime = client.service_client.config.runtime or Runtime.default()
    return runtime.metric_meter


def route_of(scope: Scope) -> str:
    """The route template that served ``scope`` (after routing), from its path parameters."""
    if "endpoint" not in scope:
        return UNMATCHED
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        text = str(value)
        if text:  # a uuid parameter's text is lower case, whatever the path said
            path = re.sub(re.escape(text), "{" + name + "}", path, flags=re.IGNORECASE)
    return path


def refusal_reason(status: int, body: bytes) -> str:
    """Why a request was refused: the API's error code, else the status's name."""
    try:
        error = json.loads(body).get("error") if body else None
    except (ValueError, AttributeError):
        error = None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and _CODE.fullmatch(code):
        return code
    return STATUS_REASONS.get(status, f"http_{status}")


def refused(status: int) -> bool:
    """A 4xx, or a 503 (the sender is asked to retry)."""
    return 400 <= status < 500 or status == 503


class Telemetry:
    """ASGI middleware: a server span and the metrics of every HTTP request."""

    def __init__(self, app: ASGIApp, meter: MetricMeter) -> None:
        self.app = app
        self.metrics = ingress_metrics(meter)
        self.tracer = trace.get_tracer("ingress")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        answer: dict[str, Any] = {"status": 500, "body": b""}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif (
                message["type"] == "http.response.body"
                and refused(answer["status"])
                and len(answer["body"]) < ERROR_BODY_LIMIT
            ):
                answer["body"] += message.get("body", b"")
            await send(message)

        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"{method} request", context=propagate.extract(carrier), kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                route, status = route_of(scope), answer["status"]
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                labels = {"route": route, "method": method, "status": str(status)}
                self.metrics.requests.add(1, labels)
                self.metrics.seconds.record(time.perf_counter() - started, {"route": route})
                if refused(status):
                    reason = refusal_reason(status, answer["body"])
                    self.metrics.refusals.add(1, {"route": route, "reason": reason})
