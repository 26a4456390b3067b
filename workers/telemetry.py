"""What an operator watches: the Prometheus endpoint of a process and its traces.

Metrics: the SDK serves its own on ``METRICS_BIND_ADDRESS`` (Rust, in Temporal's runtime);
ours (the ingress's requests and refusals, approvals, generations, syncs) are made with the
same runtime's meter, so one endpoint per process serves both and nothing else listens.

Traces: on when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set. Temporal's OpenTelemetry plugin, on every
client, carries the context from the ingress's request through starts, updates and
signals into workflows and activities; httpx's instrumentation makes a span of every
vendor call (each SDK's httpx client, ours too). Spans leave by OTLP over HTTP; the
exporter reads the other standard ``OTEL_*`` variables (headers, timeout, protocol paths).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanProcessor
from temporalio.client import Plugin
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from ingress.telemetry import client_meter
from workers.logging import get_logger

__all__ = ["client_meter", "client_plugins", "configure_tracing", "telemetry_runtime"]

log = get_logger("workers.telemetry")

OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Buckets (seconds) of our histograms; the SDK's own keep its defaults (milliseconds).
SECONDS_BUCKETS: Mapping[str, Sequence[float]] = {
    "orchestrator_ingress_request_seconds": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    # A person's decision: minutes to days (the default deadline is 72 h).
    "orchestrator_approval_decision_seconds": (
        60,
        300,
        900,
        3600,
        4 * 3600,
        12 * 3600,
        24 * 3600,
        48 * 3600,
        72 * 3600,
    ),
}

_tracing: trace.TracerProvider | None = None


def telemetry_runtime(bind_address: str | None, service: str) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics and ours on Prometheus at
    ``bind_address`` (None: no endpoint, the default runtime)."""
    if not bind_address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address, histogram_bucket_overrides=SECONDS_BUCKETS
            ),
            global_tags={"service": service},
        )
    )


def tracing_configured() -> bool:
    """Whether the standard OTLP variables ask for traces."""
    return any(os.environ.get(name) for name in OTLP_ENDPOINTS)


def configure_tracing(
    service: str, *, processor: SpanProcessor | None = None
) -> trace.TracerProvider | None:
    """Install the process's tracer provider once: an OTLP exporter when the variables are
    set, or ``processor`` (tests); returns it, or None when tracing is off. Call before
    the first client connects."""
    global _tracing
    if _tracing is not None:
        return _tracing
    if processor is None:
        if not tracing_configured():
            return None
        processor = BatchSpanProcessor(_otlp_exporter())
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = create_tracer_provider(resource=Resource.create(attributes))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()  # every httpx client: the vendors' SDKs' too
    _tracing = provider
    log.info("tracing on", service=service)
    return provider


def _otlp_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: the OTEL_EXPORTER_OTLP_* variables


def client_plugins() -> list[Plugin]:
    """Plugins for every client of this process: Temporal's OpenTelemetry plugin while
    tracing is on (its spans for starts, updates, workflows and activities)."""
    if _tracing is None:
        return []
    return [OpenTelemetryPlugin(add_temporal_spans=True)]
