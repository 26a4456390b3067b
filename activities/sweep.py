"""The sweep: rows left open by workflows that ended without closing them.

A terminated workflow runs no more code, and a schedule's execution timeout terminates
one the same way, so its rows would stay ``running`` (or pending) forever. The sweep reads
the open rows, asks Temporal which of their workflows are still running (one visibility
listing, then a describe for each candidate: visibility lags, describe does not), and
closes the rows of the ended ones with the reason: "terminated", "timed out", ... Closing
is a compare-and-set, so the sweep is idempotent and harmless beside the workflows.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.context import transition_context
from db import sweep
from db.pool import Pool
from db.sweep import OpenRow

# The workflow types that own rows.
OWNERS = ("AgentJob", "Generation", "MetricSync", "NotificationDelivery")
RUNNING_QUERY = (
    "ExecutionStatus = 'Running' AND WorkflowType IN ("
    + ", ".join(f"'{name}'" for name in OWNERS)
    + ")"
)
_REASONS = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
}


class SweepInput(BaseModel):
    """How many workflows one sweep may ask about (the rest wait for the next sweep)."""

    max_checks: int = 1000


class SweepResult(BaseModel):
    """What the sweep found and closed."""

    open_rows: int = 0
    checked: int = 0  # workflows described
    closed: dict[str, int] = {}  # entity -> rows closed

    def summary(self) -> str:
        """One line for operators."""
        closed = ", ".join(f"{n} {entity}" for entity, n in sorted(self.closed.items()))
        return f"{self.open_rows} open rows, {self.checked} workflows checked, closed: " + (
            closed or "none"
        )


def ended_reason(status: WorkflowExecutionStatus | None) -> str | None:
    """Why a workflow in ``status`` left its rows open; None while it runs."""
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return None
    return _REASONS.get(status, f"workflow {status.name.lower()} without closing it")


class SweepActivities:
    """Closes the rows of ended workflows."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def sweep_ended_workflows(self, request: SweepInput) -> SweepResult:
        """Close every open row whose workflow has ended, with the reason."""
        async with self.pool.connection() as conn:
            rows = await sweep.open_rows(conn)
        result = SweepResult(open_rows=len(rows))
        if not rows:
            return result
        client = activity.client()
        running = await _running(client)
        reasons: dict[tuple[str, str | None], str | None] = {}
        closed: Counter[str] = Counter()
        for row in rows:
            if (row.workflow_id, row.run_id) in running or (row.workflow_id, None) in running:
                continue
            key = (row.workflow_id, row.run_id)
            if key not in reasons:
                if result.checked >= request.max_checks:
                    continue
                reasons[key] = await _ended(client, row)
                result.checked += 1
                activity.heartbeat(result.checked)
            reason = reasons[key]
            if reason is None:
                continue
            async with self.pool.connection() as conn:
                if await sweep.close_row(conn, row, reason, transition_context(f"swept: {reason}")):
                    closed[row.entity] += 1
        result.closed = dict(closed)
        if closed:
            activity.logger.warning(
                "closed rows of ended workflows", extra={"closed": result.closed}
            )
        return result


async def _running(client: Client) -> set[tuple[str, str | None]]:
    """Running workflows of the owning types: (id, run id) and (id, None) for each. Empty
    if the server cannot list them (a visibility store without such queries): then every
    open row's workflow is described, up to ``max_checks`` a sweep."""
    found: set[tuple[str, str | None]] = set()
    try:
        async for execution in client.list_workflows(RUNNING_QUERY):
            found.add((execution.id, execution.run_id))
            found.add((execution.id, None))
    except RPCError as exc:
        activity.logger.warning("cannot list running workflows", extra={"error": str(exc)})
        return set()
    return found


async def _ended(client: Client, row: OpenRow) -> str | None:
    """Why the row's workflow run ended, or None if it still runs (Temporal's own word)."""
    try:
        described = await client.get_workflow_handle(row.workflow_id, run_id=row.run_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "workflow not found"
        raise
    return ended_reason(described.status)
