"""The Grafana dashboard and the Prometheus alert rules in deploy/: valid, and every query
names only metrics we or the Temporal SDK export."""

from __future__ import annotations

import json
import re
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from ingress.telemetry import IngressMetrics
from tests.waiting import eventually
from workers.telemetry import telemetry_runtime
from workers.telemetry_metrics import Metrics

DEPLOY = Path(__file__).parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "agency-orchestrator.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# The SDK's (Rust core's) metrics we query, with its default "temporal_" prefix; their
# names are in the installed bridge library (tests/test_telemetry.py sees some live).
SDK = {
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_activity_schedule_to_start_latency",
    "temporal_workflow_task_execution_failed",
    "temporal_activity_execution_failed",
    "temporal_worker_task_slots_available",
    "temporal_workflow_completed",
    "temporal_workflow_failed",
}
HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")
METRIC = re.compile(r"\b((?:orchestrator|temporal)_[a-z0-9_]+)\b")


class Names:
    """A meter that only writes down the names of the instruments made with it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getattr__(self, method: str) -> Any:
        def create(name: str, *_: Any) -> None:
            self.names.add(name)

        return create


def ours() -> set[str]:
    meter = Names()
    Metrics(meter)  # type: ignore[arg-type]
    IngressMetrics(meter)  # type: ignore[arg-type]
    return meter.names


def metrics_in(expr: str) -> set[str]:
    return {HISTOGRAM_SERIES.sub("", name) for name in METRIC.findall(expr)}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_our_instruments_are_what_the_code_makes() -> None:
    assert "orchestrator_approvals_pending" in ours()
    assert "orchestrator_ingress_refusals" in ours()
    assert len(ours()) == 14


@pytest.mark.parametrize("expr", dashboard_queries() + [r["expr"] for r in alert_rules()])
def test_every_query_names_only_exported_metrics(expr: str) -> None:
    named = metrics_in(expr)
    assert named, f"no metric in {expr}"
    assert named <= ours() | SDK, named - ours() - SDK
    assert expr.count("(") == expr.count(")")


def test_the_dashboard_panels_have_ids_titles_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(p["title"] for p in dashboard["panels"])
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    # Every one of our metrics is on the dashboard.
    shown = set().union(*(metrics_in(e) for e in dashboard_queries()))
    assert ours() <= shown, ours() - shown


def test_the_alerts_are_the_four_concerns_each_with_a_runbook() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    watched = {name for r in rules for name in metrics_in(r["expr"])}
    assert {
        "temporal_workflow_task_schedule_to_start_latency",  # schedule-to-start latency
        "temporal_workflow_task_execution_failed",  # workflow task failures
        "orchestrator_approvals_expiring_soon",  # approvals near expiry
        "orchestrator_metric_syncs_failing",  # syncs failing
    } <= watched
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in ("page", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]


@pytest.mark.parametrize(
    "expr", ["rate(orchestrator_nope[5m])", "max(temporal_made_up)", "sum(up)"]
)
def test_a_query_of_an_unknown_metric_is_caught(expr: str) -> None:
    named = metrics_in(expr)
    assert not named or not named <= ours() | SDK


# What the endpoint really exports: our instruments and the SDK's, each made to record once,
# scraped; every series a query names (with its _bucket) must be there by that exact name.


@activity.defn
async def flaky() -> str:
    """Fails its first attempt (the SDK counts an activity failure), then succeeds."""
    if activity.info().attempt == 1:
        raise RuntimeError("first attempt fails")
    return "ok"


@workflow.defn(sandboxed=False)
class Completes:
    @workflow.run
    async def run(self) -> str:
        return str(
            await workflow.execute_activity(flaky, start_to_close_timeout=timedelta(seconds=30))
        )


@workflow.defn(sandboxed=False)
class Fails:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("the workflow fails", non_retryable=True)


@workflow.defn(sandboxed=False)
class TaskFails:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug: the workflow task fails, and is retried")


async def exported(bind: str) -> set[str]:
    """The series names on a Prometheus endpoint."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{bind}/metrics", timeout=10)).text
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def record_each(instruments: object) -> None:
    """Record once on every instrument of ``instruments`` (a counter, histogram, gauge)."""
    for instrument in vars(instruments).values():
        for method in ("add", "record", "set"):
            if hasattr(instrument, method):
                getattr(instrument, method)(1, {})
                break


async def test_every_series_the_dashboard_and_alerts_query_is_exported(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        bind = f"127.0.0.1:{sock.getsockname()[1]}"
    runtime = telemetry_runtime(bind, "agency-orchestrator-test")
    assert runtime is not None
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=temporal_env.client.namespace,
        runtime=runtime,
    )
    record_each(Metrics(runtime.metric_meter))
    record_each(IngressMetrics(runtime.metric_meter))
    queried = {
        name
        for expr in dashboard_queries() + [r["expr"] for r in alert_rules()]
        for name in METRIC.findall(expr)
    }
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Completes, Fails, TaskFails],
        activities=[flaky],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        run = f"dashboards-{uuid.uuid4()}"
        assert (
            await client.execute_workflow(
                Completes.run, id=f"{run}-completes", task_queue=task_queue
            )
            == "ok"
        )
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(Fails.run, id=f"{run}-fails", task_queue=task_queue)
        stuck = await client.start_workflow(
            TaskFails.run, id=f"{run}-task-fails", task_queue=task_queue
        )

        async def all_there() -> set[str] | None:
            found = await exported(bind)
            return found if queried <= found else None

        try:
            found = await eventually(all_there, what="every queried series")
        except AssertionError:
            found = await exported(bind)
        await stuck.terminate("test over")
    assert queried <= found, sorted(queried - found)
