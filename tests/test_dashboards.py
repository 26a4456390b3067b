"""The Grafana dashboard and the Prometheus alert rules in deploy/: valid, and every query
names only metrics we or the Temporal SDK export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingress.telemetry import IngressMetrics
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
