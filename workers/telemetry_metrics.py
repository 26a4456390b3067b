"""Business metrics of the worker, on its Prometheus endpoint next to the SDK's.

Events are counted where they become true: an activity interceptor records an approval's
decision (and how long the person took), a closed gate, a generation's end and a sync's
end with its rows, once the activity that writes it has succeeded (at least once, like
the activities: a worker that crashes after the write but before reporting it counts
the retry too). State comes from the database, read every ``GAUGE_INTERVAL`` by each
worker that polls the workflows' queue: open gates, those expiring soon, the oldest one,
and per platform the sync lag and the connections whose last sync failed. Every worker
reports the same values: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from db import telemetry
from db.pool import Pool
from workers.logging import get_logger
from workers.stopping import cancel_until_done

log = get_logger("workers.telemetry_metrics")

GAUGE_INTERVAL = timedelta(seconds=30)
# A gate closer than this to its deadline counts as expiring soon (the alert's window).
EXPIRY_WARNING = timedelta(hours=6)
FINAL_GENERATION = frozenset({"completed", "failed", "nsfw", "cancelled"})


class Metrics:
    """The instruments, made once per meter."""

    def __init__(self, meter: MetricMeter) -> None:
        self.decisions = meter.create_counter(
            "orchestrator_approval_decisions",
            "Approval decisions recorded, by decision and channel",
        )
        self.decision_seconds = meter.create_histogram_float(
            "orchestrator_approval_decision_seconds",
            "Time from a gate's opening to its decision",
            "s",
        )
        self.approvals_closed = meter.create_counter(
            "orchestrator_approvals_closed", "Gates closed without a decision, by status"
        )
        self.generations = meter.create_counter(
            "orchestrator_generations_finished", "Generations that reached a final status"
        )
        self.syncs = meter.create_counter(
            "orchestrator_metric_syncs_finished", "Metric syncs closed, by status"
        )
        self.sync_rows = meter.create_counter(
            "orchestrator_metric_sync_rows", "Metric rows pulled by closed syncs, by status"
        )
        self.pending = meter.create_gauge_float(
            "orchestrator_approvals_pending", "Approval gates waiting for a decision"
        )
        self.expiring = meter.create_gauge_float(
            "orchestrator_approvals_expiring_soon",
            f"Pending gates whose deadline is less than {EXPIRY_WARNING} away",
        )
        self.oldest = meter.create_gauge_float(
            "orchestrator_approval_oldest_pending_seconds", "Age of the oldest pending gate", "s"
        )
        self.sync_lag = meter.create_gauge_float(
            "orchestrator_metric_sync_lag_seconds",
            "Per platform, the longest time an active connection has gone without a sync",
            "s",
        )
        self.syncs_failing = meter.create_gauge_float(
            "orchestrator_metric_syncs_failing",
            "Per platform, active connections whose last sync failed",
        )


_metrics: dict[int, Metrics] = {}


def metrics_of(meter: MetricMeter) -> Metrics:
    """One set of instruments per meter (a runtime registers a name once)."""
    found = _metrics.get(id(meter))
    if found is None:
        found = _metrics[id(meter)] = Metrics(meter)
    return found


class BusinessMetrics(Interceptor):
    """Worker interceptor: counts the business events activities make true."""

    def __init__(self, meter: MetricMeter, pool: Pool) -> None:
        self.metrics = metrics_of(meter)
        self.pool = pool

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Recorder(next, self)


class _Recorder(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: BusinessMetrics) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        try:
            await self._record(activity.info().activity_type, input.args, result)
        except Exception as exc:  # a metric never fails the work it counts
            log.warning("business metric not recorded", error=str(exc))
        return result

    async def _record(self, kind: str, args: Any, result: Any) -> None:
        m = self.owner.metrics
        request: Any = args[0] if args else None
        # A decision: the one approver's, or the vote that decides a team's gate (a reject,
        # the quorum's last approval, an operator's).
        decided = kind == "record_approval_decision" or (
            kind == "record_approval_vote" and request.final
        )
        if decided:
            decision = "approve" if request.approved else "reject"
            m.decisions.add(1, {"decision": decision, "channel": str(request.channel)})
            async with self.owner.pool.connection() as conn:
                waited = await telemetry.decision_seconds(conn, request.approval_id)
            if waited is not None:
                m.decision_seconds.record(waited, {"decision": decision})
        elif kind == "close_approval":
            m.approvals_closed.add(1, {"status": str(request.status)})
        elif kind == "check_generation" and str(result.status) in FINAL_GENERATION:
            m.generations.add(1, {"status": str(result.status)})
        elif kind == "finish_generation":
            m.generations.add(1, {"status": str(request.status)})
        elif kind == "close_metric_sync":
            status = {"status": str(request.status)}
            m.syncs.add(1, status)
            if request.pulled is not None:
                m.sync_rows.add(int(request.pulled.rows), status)


async def collect_gauges(metrics: Metrics, pool: Pool) -> None:
    """Read the state gauges from the database once."""
    async with pool.connection() as conn:
        approvals = await telemetry.approval_gauges(conn, EXPIRY_WARNING)
        platforms = await telemetry.sync_gauges(conn)
    metrics.pending.set(float(approvals.pending), {})
    metrics.expiring.set(float(approvals.expiring_soon), {})
    metrics.oldest.set(approvals.oldest_seconds, {})
    for row in platforms:
        labels = {"platform": row.platform}
        metrics.sync_lag.set(row.lag_seconds or 0.0, labels)
        metrics.syncs_failing.set(float(row.failing), labels)


@contextlib.asynccontextmanager
async def collecting_gauges(
    meter: MetricMeter, pool: Pool, interval: timedelta = GAUGE_INTERVAL
) -> AsyncIterator[None]:
    """Refresh the state gauges every ``interval`` while the block runs."""
    metrics = metrics_of(meter)

    async def loop() -> None:
        while True:
            try:
                await collect_gauges(metrics, pool)
            except Exception as exc:  # the database may be down: the next round retries
                log.warning("state gauges not read", error=str(exc))
            await asyncio.sleep(interval.total_seconds())

    task = asyncio.create_task(loop(), name="state-gauges")
    try:
        yield
    finally:
        await cancel_until_done([task])  # its round may lose a cancel in the pool
