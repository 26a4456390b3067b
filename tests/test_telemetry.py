"""What an operator watches: connected traces from the ingress to the vendors, and our
metrics on the Prometheus endpoint next to the SDK's."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.app.api_client import call
from tests.app.helpers import app_user
from tests.app.supabase_keys import supabase_project
from tests.encryption import CONVERTER
from tests.generations.helpers import start, user_with_key
from tests.harness import Stack, running_stack
from tests.metrics import SINCE, UNTIL, add_connection, backfill
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row, reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP
from workers import telemetry
from workers.telemetry import client_plugins, configure_tracing, telemetry_runtime
from workers.telemetry_metrics import collect_gauges, metrics_of


class Collected(SpanExporter):
    """Spans ended while a test listens (the tracer provider is the process's, once)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.listening = False
        self._lock = threading.Lock()

    def export(self, spans: Any) -> SpanExportResult:
        with self._lock:
            if self.listening:
                self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def trace_of(self, name: str) -> list[ReadableSpan]:
        """Every span of the trace whose span ``name`` is."""
        with self._lock:
            root = next(s for s in self.spans if s.name == name)
            assert root.context is not None
            return [
                s for s in self.spans if s.context and s.context.trace_id == root.context.trace_id
            ]


COLLECTED = Collected()


@pytest.fixture
def spans() -> Iterator[Collected]:
    configure_tracing("agency-orchestrator-test", processor=SimpleSpanProcessor(COLLECTED))
    COLLECTED.spans.clear()
    COLLECTED.listening = True
    try:
        yield COLLECTED
    finally:
        COLLECTED.listening = False
        COLLECTED.spans.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def traced_client(env: WorkflowEnvironment, bind: str | None = None) -> Client:
    """A client as the processes make theirs: the tracing plugin, the metrics runtime."""
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=CONVERTER,
        plugins=client_plugins(),
        runtime=telemetry_runtime(bind, "agency-orchestrator-test"),
    )


def parent_names(trace: list[ReadableSpan], span: ReadableSpan) -> list[str]:
    """The names of ``span``'s ancestors, nearest first."""
    by_id = {s.context.span_id: s for s in trace if s.context}
    names, parent = [], span.parent
    while parent is not None and parent.span_id in by_id:
        names.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    return names


async def test_a_reply_traces_from_the_webhook_through_the_update_to_its_activity(
    spans: Collected, db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = await traced_client(temporal_env)
    async with running_stack(db_url, client, task_queue) as stack:
        _, handle, sent = await waiting_job(stack, [DELETE_STEP], "trace@example.com")
        await reply(stack, sent["id"], "Approve")
        assert (await handle.result()).status == "completed"
    trace = spans.trace_of("POST /webhooks/resend")
    names = {s.name for s in trace}
    # The ingress read the reply from Resend (a vendor call), updated the workflow, whose
    # handler ran the activity that records the decision: one trace.
    read = next(s for s in trace if s.name == "GET" and "/emails/receiving/" in str(s.attributes))
    # (Above it: the emulator's own POST of the webhook, traced like any httpx call.)
    assert parent_names(trace, read)[0] == "POST /webhooks/resend"
    assert {"StartWorkflowUpdate:decide_approval", "HandleUpdate:decide_approval"} <= names
    recorded = next(s for s in trace if s.name == "RunActivity:record_approval_vote")
    assert "POST /webhooks/resend" in parent_names(trace, recorded)
    assert "HandleUpdate:decide_approval" in parent_names(trace, recorded)
    # The approval token in the path never reaches a span: the route is the template.
    root = next(s for s in trace if s.name == "POST /webhooks/resend")
    assert root.attributes is not None and root.attributes["http.route"] == "/webhooks/resend"


async def test_an_api_start_traces_to_the_vendor_call_of_its_activity(
    spans: Collected, db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = await traced_client(temporal_env)
    with supabase_project() as project:
        async with running_stack(
            db_url,
            client,
            task_queue,
            supabase_url=project.url,
            supabase_jwt_secret=project.legacy_secret,
        ) as stack:
            user = await app_user(stack)
            answer = await call(
                stack,
                "POST",
                "/v1/generations",
                project.token(user.user_id),
                {"prompt_text": "a lighthouse", "settings": {"quality": "720p"}},
            )
            assert answer.status_code == 202, answer.text
            handle = client.get_workflow_handle(answer.json()["workflow_id"])
            assert (await handle.result())["status"] == "completed"
    trace = spans.trace_of("POST /v1/generations")
    submit = next(s for s in trace if s.name == "RunActivity:submit_generation")
    vendor = [s for s in trace if s.name == "POST" and "higgsfield" in str(s.attributes)]
    assert vendor, sorted({s.name for s in trace})
    chain = parent_names(trace, vendor[0])
    assert chain[0] == "RunActivity:submit_generation" and "POST /v1/generations" in chain
    assert "RunWorkflow:Generation" in parent_names(trace, submit)


def scrape(bind: str) -> dict[str, float]:
    """``name{labels}`` → value of every sample on the endpoint."""
    text = httpx.get(f"http://{bind}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples carrying ``labels``."""
    total = 0.0
    for key, found in samples.items():
        metric, _, rest = key.partition("{")
        if metric == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += found
    return total


@pytest.fixture
async def metered(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[tuple[Stack, str]]:
    bind = f"127.0.0.1:{free_port()}"
    client = await traced_client(temporal_env, bind)
    async with running_stack(db_url, client, task_queue) as stack:
        yield stack, bind


async def test_business_and_ingress_metrics_appear_with_values_after_a_job(
    metered: tuple[Stack, str],
) -> None:
    stack, bind = metered
    request, handle, sent = await waiting_job(stack, [DELETE_STEP], "metrics@example.com")
    await collect_gauges(metrics_of(telemetry.client_meter(stack.client)), stack.pool)
    waiting = scrape(bind)
    assert value(waiting, "orchestrator_approvals_pending") == 1
    assert value(waiting, "orchestrator_approval_oldest_pending_seconds") >= 0
    assert value(waiting, "orchestrator_approvals_expiring_soon") == 0  # 72 h away

    # Refused requests are counted by reason, on the route's template (not the token).
    async with httpx.AsyncClient(base_url=stack.ingress_url) as http:
        assert (await http.post("/webhooks/resend", content=b"{}")).status_code == 401
        assert (await http.get("/approvals/not-a-token")).status_code == 403
        assert (await http.get("/no/such/route")).status_code == 404
    await reply(stack, sent["id"], "Approve")
    assert (await handle.result()).status == "completed"
    assert (await approval_row(stack, request.job_id))["status"] == "approved"
    await collect_gauges(metrics_of(telemetry.client_meter(stack.client)), stack.pool)

    done = await eventually(
        lambda: ready(bind, "orchestrator_approval_decisions"), what="the decision's metrics"
    )
    assert value(done, "orchestrator_approval_decisions", decision="approve", channel="email") == 1
    assert value(done, "orchestrator_approval_decision_seconds_count", decision="approve") == 1
    assert value(done, "orchestrator_approvals_pending") == 0
    route = "/webhooks/resend"
    assert value(done, "orchestrator_ingress_requests", route=route, status="200") >= 1
    assert value(done, "orchestrator_ingress_refusals", route=route, reason="unauthenticated") == 1
    assert value(done, "orchestrator_ingress_refusals", route="unmatched", reason="not_found") == 1
    assert value(done, "orchestrator_ingress_request_seconds_count", route=route) >= 2
    assert (
        value(done, "orchestrator_ingress_refusals", route="/approvals/{token}", reason="forbidden")
        == 1
    )
    assert not any("not-a-token" in key for key in done)  # paths never become labels
    # The SDK's own metrics are on the same endpoint.
    assert value(done, "temporal_workflow_completed") >= 1
    assert any(k.startswith("temporal_activity_schedule_to_start_latency") for k in done)


async def test_generation_and_sync_metrics_appear_with_values(
    metered: tuple[Stack, str],
) -> None:
    stack, bind = metered
    user_id = await user_with_key(stack)
    _, generation = await start(stack, user_id, "a lighthouse at dawn")
    assert (await generation.result()).status == "completed"
    stack.emulators.meta.configure_account("7654321", campaigns=2)
    connection = await add_connection(stack, account_id="7654321")
    sync = await (await backfill(stack, connection)).result()
    assert sync.status == "success" and sync.created > 0
    synced = await stack.fetchrow(
        "SELECT last_synced_at FROM platform_connections WHERE id = %s", connection.id
    )
    assert synced is not None and synced["last_synced_at"] is not None
    before = datetime.now(UTC)
    await collect_gauges(metrics_of(telemetry.client_meter(stack.client)), stack.pool)
    after = datetime.now(UTC)

    done = await eventually(
        lambda: ready(bind, "orchestrator_metric_syncs_finished"), what="the sync's metrics"
    )
    assert value(done, "orchestrator_generations_finished", status="completed") == 1
    assert value(done, "orchestrator_metric_syncs_finished", status="success") == 1
    # Rows as the platform sends them: one per campaign and day (each holds several values,
    # which the sync's result counts).
    days = (UNTIL - SINCE).days + 1
    assert value(done, "orchestrator_metric_sync_rows", status="success") == 2 * days
    assert sync.created + sync.updated + sync.unchanged > 2 * days
    # The lag is how far behind the data is: from the end of the window it synced (the
    # backfill's, in 2025) to when the gauge was read; the connection is not failing.
    lag = value(done, "orchestrator_metric_sync_lag_seconds", platform="meta")
    through = synced["last_synced_at"]
    assert (before - through).total_seconds() <= lag <= (after - through).total_seconds()
    assert value(done, "orchestrator_metric_syncs_failing", platform="meta") == 0


def ready(bind: str, name: str) -> dict[str, float] | None:
    samples = scrape(bind)
    return samples if value(samples, name) else None


def test_route_templates_and_refusal_reasons() -> None:
    from ingress.telemetry import refusal_reason, route_of

    token = "eyJhbGciOi.tok.en"
    scope = {"path": f"/approvals/{token}", "endpoint": object(), "path_params": {"token": token}}
    assert route_of(scope) == "/approvals/{token}"
    upper = {"path": "/v1/jobs/0A1B2C3D-0000-4000-8000-000000000000", "endpoint": object()}
    upper["path_params"] = {"id": "0a1b2c3d-0000-4000-8000-000000000000"}
    assert route_of(upper) == "/v1/jobs/{id}"
    assert route_of({"path": "/wp-admin.php"}) == "unmatched"
    assert refusal_reason(422, b'{"error": {"code": "idempotency_key_reused"}}') == (
        "idempotency_key_reused"
    )
    # A code that is not one of ours (free text, huge, not a string) is not a label.
    for body in (b'{"error": {"code": "Free Text!"}}', b'{"error": {"code": 7}}', b"<html>"):
        assert refusal_reason(400, body) == "bad_request"
    assert refusal_reason(401, b'{"error": "webhook verification failed"}') == "unauthenticated"
    assert refusal_reason(418, b"") == "http_418"
    assert re.fullmatch(
        r"[a-z_0-9]+", refusal_reason(422, b'{"error": {"code": "' + b"a" * 60 + b'"}}')
    )
