"""Metric-sync schedules: one Temporal Schedule per connection, mirrored from the table.

``reconcile_schedules`` is idempotent: it creates a missing schedule, updates one whose
frequency or account changed, pauses one whose connection is inactive (and unpauses it
when it is active again) and deletes one whose connection row is gone. It runs from
``orchestrator schedules reconcile`` and from the ``ScheduleReconcile`` workflow on the
``metric-sync-reconcile`` schedule (its activity is ``ScheduleActivities`` below).
Schedules carry their task queue in the memo, so several deployments (or tests) can share
one namespace without touching each other's. The workflows are named by their registered
names, not imported: they import this module's activity.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowHandle,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from db import metrics
from db.metrics import ConnectionRow
from db.pool import Pool
from workflows.models.metric_sync import MetricSyncInput, MetricSyncResult, ScheduleReconcileInput
from workflows.search_attributes import CONNECTION_ID, PLATFORM

# The registered names of the workflows the schedules start (workflows/metric_sync.py).
METRIC_SYNC_WORKFLOW = "MetricSync"
RECONCILE_WORKFLOW = "ScheduleReconcile"
SCHEDULE_PREFIX = "metric-sync-"
RECONCILE_SCHEDULE_ID = "metric-sync-reconcile"
RECONCILE_EVERY = timedelta(minutes=10)
# One missed run is enough to catch up: every run pulls everything since last_synced_at.
MAX_CATCHUP_WINDOW = timedelta(days=1)
SYNC_EXECUTION_TIMEOUT = timedelta(hours=6)  # a stuck run must not block SKIP forever

Change = Literal["created", "updated", "paused", "unpaused", "unchanged"]


class ScheduleMissing(LookupError):
    """A connection has no schedule (yet)."""


class ReconcileInput(BaseModel):
    """The task queue whose metric-sync schedules are reconciled."""

    task_queue: str


class ReconcileResult(BaseModel):
    """Which connections' schedules changed, by kind of change."""

    created: list[str] = []
    updated: list[str] = []
    paused: list[str] = []
    unpaused: list[str] = []
    deleted: list[str] = []
    unchanged: int = 0

    def summary(self) -> str:
        """One line for operators."""
        parts = [
            f"{len(ids)} {kind}"
            for kind, ids in (
                ("created", self.created),
                ("updated", self.updated),
                ("paused", self.paused),
                ("unpaused", self.unpaused),
                ("deleted", self.deleted),
            )
            if ids
        ]
        return ", ".join([*parts, f"{self.unchanged} unchanged"])


class ScheduleActivities:
    """Keeps the metric-sync schedules in step with platform_connections."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def reconcile_metric_schedules(self, request: ReconcileInput) -> ReconcileResult:
        """Create, update, pause and delete schedules to match the table."""
        return await reconcile_schedules(activity.client(), self.pool, request.task_queue)


def schedule_id(connection_id: object) -> str:
    """The schedule of a connection: ``metric-sync-<connection id>``."""
    return f"{SCHEDULE_PREFIX}{connection_id}"


def backfill_workflow_id(connection_id: object, since: date, until: date) -> str:
    """One backfill per connection and window at a time."""
    return f"{SCHEDULE_PREFIX}{connection_id}-backfill-{since}-{until}"


def _connection_of(schedule: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(schedule.removeprefix(SCHEDULE_PREFIX))
    except ValueError:
        return None  # the reconcile schedule, or not ours


def revoked_note(label: str, reason: str | None) -> str:
    """The note of a schedule paused because its credentials failed for good."""
    return (
        f"Paused: the credentials of {label} stopped working ({reason or 'revoked'}). "
        "Reconnect the account (orchestrator connections reconnect / threads reconnect) and "
        "the next reconcile resumes it."
    )[:1000]


def _note(row: ConnectionRow) -> str:
    if row.credentials_status == "revoked":
        return revoked_note(row.label, row.credentials_error)
    if not row.is_active:
        return f"Paused: {row.label} is inactive (platform_connections.is_active = false)."
    return (
        f"Syncs {row.label} every {row.sync_frequency} min. Managed by `orchestrator "
        "schedules reconcile`: edit platform_connections, not this schedule."
    )


def _search_attributes(row: ConnectionRow) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(CONNECTION_ID, str(row.id)),
            SearchAttributePair(PLATFORM, row.platform),
        ]
    )


def desired_schedule(row: ConnectionRow, task_queue: str) -> Schedule:
    """The schedule a connection row calls for."""
    every = timedelta(minutes=row.sync_frequency)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            METRIC_SYNC_WORKFLOW,
            MetricSyncInput(connection_id=row.id),
            id=schedule_id(row.id),
            task_queue=task_queue,
            execution_timeout=SYNC_EXECUTION_TIMEOUT,
            typed_search_attributes=_search_attributes(row),
            static_summary=f"Metric sync · {row.label}"[:200],
            static_details=(
                f"Pulls daily campaign metrics of {row.label} since the last sync (minus the "
                f"lookback) into performance_metrics, every {row.sync_frequency} min."
            ),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=min(every, MAX_CATCHUP_WINDOW)
        ),
        state=ScheduleState(
            note=_note(row), paused=not row.is_active or row.credentials_status == "revoked"
        ),
    )


def _differs(current: Schedule, desired: Schedule) -> bool:
    """Whether the parts reconcile manages differ (spec, action target, policy, note; the
    summary is stored encrypted, and every change of a label changes the note too)."""
    action, wanted = current.action, desired.action
    assert isinstance(wanted, ScheduleActionStartWorkflow)
    if not isinstance(action, ScheduleActionStartWorkflow):
        return True
    return (
        [i.every for i in current.spec.intervals] != [i.every for i in desired.spec.intervals]
        or (current.spec.jitter or timedelta(0)) != (desired.spec.jitter or timedelta(0))
        or (action.workflow, action.id, action.task_queue, action.execution_timeout)
        != (wanted.workflow, wanted.id, wanted.task_queue, wanted.execution_timeout)
        or current.policy.overlap != desired.policy.overlap
        or current.policy.catchup_window != desired.policy.catchup_window
        or current.state.note != desired.state.note
    )


async def _describe(handle: ScheduleHandle) -> Any:
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def converge(
    client: Client,
    schedule: str,
    desired: Schedule,
    *,
    memo: dict[str, str],
    search_attributes: TypedSearchAttributes | None = None,
    follows_pause: bool,
) -> Change:
    """Create ``schedule`` as ``desired``, or update it where the parts reconcile manages
    differ (``_differs``; its paused state too when ``follows_pause``)."""
    handle = client.get_schedule_handle(schedule)
    description = await _describe(handle)
    if description is None:
        try:
            await client.create_schedule(
                schedule, desired, memo=memo, search_attributes=search_attributes
            )
            return "created"
        except ScheduleAlreadyRunningError:
            description = await handle.describe()  # created concurrently: reconcile it
    current: Schedule = description.schedule
    if not follows_pause and current.state.paused:
        # The operator's pause, and the note they paused it with, stay as they are.
        state = dataclasses.replace(desired.state, paused=True, note=current.state.note)
        desired = dataclasses.replace(desired, state=state)
    pause_changes = follows_pause and current.state.paused != desired.state.paused
    if not (pause_changes or _differs(current, desired)):
        return "unchanged"
    # One update sets everything, the paused state included. An update and a pause or
    # unpause sent one after the other can reach the server's scheduler in the same
    # workflow task, which applies the pause/unpause first and then the update's whole
    # state: a reactivated connection's schedule would stay paused (and a deactivated
    # one keep running) until the next reconcile.

    def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=desired)

    await handle.update(replace)
    if not pause_changes:
        return "updated"
    return "paused" if desired.state.paused else "unpaused"


async def reconcile_connection(client: Client, row: ConnectionRow, task_queue: str) -> Change:
    """Make one connection's schedule match its row."""
    return await converge(
        client,
        schedule_id(row.id),
        desired_schedule(row, task_queue),
        memo={"task_queue": task_queue, "connection_id": str(row.id)},
        search_attributes=_search_attributes(row),
        follows_pause=True,
    )


async def reconcile_schedules(client: Client, pool: Pool, task_queue: str) -> ReconcileResult:
    """Create, update, pause and delete this task queue's schedules to match the table."""
    async with pool.connection() as conn:
        rows = await metrics.list_connections(conn)
    result = ReconcileResult()
    for row in rows:
        change = await reconcile_connection(client, row, task_queue)
        if change == "unchanged":
            result.unchanged += 1
        else:
            getattr(result, change).append(str(row.id))
    wanted = {row.id for row in rows}
    # Listing is eventually consistent: a schedule created moments ago may be missing
    # here, which only delays the deletion of an orphan to the next reconcile.
    async for listed, _ in listed_schedules(client, task_queue, SCHEDULE_PREFIX):
        connection_id = _connection_of(listed)
        if connection_id is None or connection_id in wanted:
            continue
        if await delete_schedule(client, connection_id):
            result.deleted.append(str(connection_id))
    return result


async def listed_schedules(
    client: Client, task_queue: str, prefix: str
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    """This task queue's schedules (by the memo) whose ids start with ``prefix``, with
    their memo; another deployment's schedules sharing the namespace are left out."""
    async for listed in await client.list_schedules():
        if not listed.id.startswith(prefix):
            continue
        memo = await listed.memo()
        if memo.get("task_queue") == task_queue:
            yield listed.id, memo


async def delete_schedule(client: Client, connection_id: object) -> bool:
    """Delete a connection's schedule; False if there was none."""
    return await delete_schedule_id(client, schedule_id(connection_id))


async def delete_schedule_id(client: Client, schedule: str) -> bool:
    """Delete a schedule; False if there was none."""
    try:
        await client.get_schedule_handle(schedule).delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def ensure_reconcile_schedule(
    client: Client, task_queue: str, *, schedule: str = RECONCILE_SCHEDULE_ID
) -> Change:
    """Create (or repoint) the schedule that runs ScheduleReconcile every 10 minutes
    ("created", "updated" or "unchanged")."""
    desired = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW,
            ScheduleReconcileInput(task_queue=task_queue),
            id=schedule,
            task_queue=task_queue,
            execution_timeout=RECONCILE_EVERY,
            static_summary="Reconcile metric-sync schedules",
            static_details="Creates, updates, pauses and deletes the metric-sync-<connection> "
            "schedules to match platform_connections.",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RECONCILE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=RECONCILE_EVERY),
        state=ScheduleState(note="Keeps one metric-sync schedule per platform connection."),
    )
    # Its paused state is the operator's: a paused reconcile schedule stays paused.
    return await converge(
        client, schedule, desired, memo={"task_queue": task_queue}, follows_pause=False
    )


async def trigger_sync(client: Client, connection_id: object) -> None:
    """Run the connection's schedule now (skipped if a sync of it is still running)."""
    try:
        await client.get_schedule_handle(schedule_id(connection_id)).trigger()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleMissing(
                f"connection {connection_id} has no schedule; run `orchestrator schedules "
                "reconcile` (or check the id)"
            ) from None
        raise


async def start_backfill(
    client: Client,
    pool: Pool,
    task_queue: str,
    connection_id: uuid.UUID,
    since: date,
    until: date,
) -> WorkflowHandle[Any, MetricSyncResult]:
    """Start a MetricSync of an explicit window; ``RowNotFound`` for an unknown connection."""
    async with pool.connection() as conn:
        row = await metrics.get_connection(conn, connection_id)
    return await client.start_workflow(
        METRIC_SYNC_WORKFLOW,
        MetricSyncInput(connection_id=connection_id, window_start=since, window_end=until),
        result_type=MetricSyncResult,
        id=backfill_workflow_id(connection_id, since, until),
        task_queue=task_queue,
        static_summary=f"Backfill {since} → {until} · {row.label}"[:200],
        static_details=f"Metric sync of {row.label} for the explicit window {since}..{until}.",
        search_attributes=_search_attributes(row),
    )
