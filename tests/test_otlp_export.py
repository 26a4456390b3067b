"""Traces leave by OTLP over HTTP when, and only when, the standard variables ask for it.

Each case runs in its own process (the tracer provider is installed once per process) that
sets up tracing as the worker does (``workers.telemetry.configure_tracing``), makes a span
and an httpx call, and shuts the provider down (which flushes it); a local HTTP server
stands in for the collector and decodes what arrives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

PROCESS = """
import httpx
from opentelemetry import trace
from workers.telemetry import client_plugins, configure_tracing

provider = configure_tracing("agency-orchestrator-worker")
print("plugins", len(client_plugins()))
with trace.get_tracer("test").start_as_current_span("a job's step"):
    httpx.get("{vendor}")  # a vendor call: httpx's instrumentation makes its span
if provider is not None:
    provider.shutdown()
"""


class Collector(ThreadingHTTPServer):
    """Records the body of every POST, by path; answers 200 to all (a vendor too)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run_process(collector: Collector, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "-c", PROCESS.format(vendor=f"{collector.url}/vendor")],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def spans_of(collector: Collector) -> list[tuple[str, str]]:
    """(service name, span name) of every span the collector received."""
    found = []
    for path, _, body in collector.received:
        if path != "/v1/traces":
            continue
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                found += [(attributes["service.name"], span.name) for span in scope.spans]
    return found


def test_spans_go_to_the_otlp_endpoint_with_the_service_name(collector: Collector) -> None:
    out = run_process(
        collector,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=collector-key",
    )
    assert "plugins 1" in out  # the clients get Temporal's OpenTelemetry plugin
    spans = spans_of(collector)
    assert ("agency-orchestrator-worker", "a job's step") in spans
    assert ("agency-orchestrator-worker", "GET") in spans  # the vendor call's client span
    headers = [h for path, h, _ in collector.received if path == "/v1/traces"]
    assert headers and all(h.get("x-api-key") == "collector-key" for h in headers)


def test_the_standard_service_name_and_traces_endpoint_win(collector: Collector) -> None:
    run_process(
        collector,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector.url}/v1/traces",
        OTEL_SERVICE_NAME="orchestrator-eu",
    )
    assert {service for service, _ in spans_of(collector)} == {"orchestrator-eu"}


@pytest.mark.parametrize("endpoint", [None, ""])
def test_without_an_endpoint_nothing_is_traced_or_sent(
    collector: Collector, endpoint: str | None
) -> None:
    env = {} if endpoint is None else {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    out = run_process(collector, **env)
    assert "plugins 0" in out
    assert [path for path, _, _ in collector.received] == []
