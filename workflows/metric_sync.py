"""MetricSync: pull an ad account's daily campaign metrics into performance_metrics.

open the sync log (window since last_synced_at minus the lookback, or an explicit
backfill window) → pull every page, upserting as it goes → close the log as success,
partial or failed and, after a success, advance last_synced_at over the window.
ScheduleReconcile keeps one schedule per connection in step with platform_connections.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

from workflows.ending import despite_cancel, failure_reason, handlers_done, out_of_time
from workflows.notify import NOTIFIES, notify
from workflows.task_queues import SYNCS, activity_queue
from workflows.visibility import ONE_UPSERT_PER_CHANGE, upsert_changes

with workflow.unsafe.imports_passed_through():
    from activities.housekeeping_schedules import (
        HousekeepingReconcileInput,
        HousekeepingResult,
        HousekeepingScheduleActivities,
    )
    from activities.metric_schedules import ReconcileInput, ReconcileResult, ScheduleActivities
    from activities.metric_sync import (
        CloseSyncInput,
        MetricSyncActivities,
        OpenSyncInput,
        PullInput,
        PullResult,
        SyncOpened,
    )
    from activities.sweep import SweepActivities, SweepInput, SweepResult
    from workflows.models.metric_sync import (
        MetricSyncInput,
        MetricSyncResult,
        ScheduleReconcileInput,
        SyncStatus,
    )
    from workflows.models.notification import NotificationEvent
    from workflows.policies import DB_RETRY, DB_TIMEOUT
    from workflows.search_attributes import CONNECTION_ID, PLATFORM, SYNC_OUTCOME

PULL_TIMEOUT = timedelta(hours=2)
# The pull heartbeats after every write and every few seconds between them: a dead
# worker's pull resumes on another worker within this, from its last heartbeat.
PULL_HEARTBEAT = timedelta(seconds=10)
PULL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=12,
    non_retryable_error_types=[
        "AuthExpired",
        "PlatformRefused",
        "CredentialsUnusable",
        "ConnectionUnavailable",
    ],
)
RECONCILE_TIMEOUT = timedelta(minutes=2)
RECONCILE_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=30))
SWEEP_TIMEOUT = timedelta(minutes=3)
SWEEP_HEARTBEAT = timedelta(seconds=30)
SWEEP_RETRY = RetryPolicy(maximum_attempts=2)
# workflow.patched ids. A sync ends by its own deadline and closes its log whatever ends
# it: a cancel is logged failed with the reason "cancelled". Older runs replay as they ran.
SYNC_CLOSES_ITS_LOG = "sync-closes-its-log"
# The reconcile also sweeps the rows of workflows that ended without closing them.
RECONCILE_SWEEPS = "reconcile-sweeps"
# The reconcile also keeps the housekeeping schedules (token refresh, retention, dashboards).
RECONCILE_HOUSEKEEPING = "reconcile-housekeeping"


@workflow.defn(name="MetricSync", failure_exception_types=[ValidationError])
class MetricSync:
    """One sync of one ad-platform connection, scheduled or backfilled."""

    @workflow.run
    async def run(self, request: MetricSyncInput) -> MetricSyncResult:
        """Open the log, pull, close; a failed sync fails the workflow after closing its log."""
        # Not in a finally: a run evicted from the cache is closed outside its event loop.
        result = await self._run(request)
        await handlers_done()
        return result

    async def _run(self, request: MetricSyncInput) -> MetricSyncResult:
        # Its schedule starts it with both attributes (free): runs with the patch upsert
        # only what changes.
        one_upsert = workflow.patched(ONE_UPSERT_PER_CHANGE)
        if one_upsert:
            upsert_changes(CONNECTION_ID.value_set(str(request.connection_id)))
        else:
            workflow.upsert_search_attributes([CONNECTION_ID.value_set(str(request.connection_id))])
        self._closes_its_log = workflow.patched(SYNC_CLOSES_ITS_LOG)
        deadline = workflow.now() + request.deadline
        opened, cancelled = await self._open(request)
        if one_upsert:
            upsert_changes(PLATFORM.value_set(opened.platform))
        else:
            workflow.upsert_search_attributes([PLATFORM.value_set(opened.platform)])
        self._show(opened, "pulling")
        pulled: PullResult | None = None
        error: str | None = "cancelled"
        if not cancelled:
            pulled, error, cancelled = await self._pull(request, opened, deadline)
        status = _status(pulled, error)
        await self._close(request, opened, status, pulled, error)
        workflow.upsert_search_attributes([SYNC_OUTCOME.value_set(status)])
        self._show(opened, status, pulled, error)
        if status != "success" and not cancelled and workflow.patched(NOTIFIES):
            await despite_cancel(self._tell(opened, status, pulled, error))
        if cancelled:
            raise asyncio.CancelledError
        if error:
            raise ApplicationError(
                f"metric sync failed: {error}", type="MetricSyncFailed", non_retryable=True
            )
        assert pulled is not None
        return _result(opened, status, pulled)

    async def _open(self, request: MetricSyncInput) -> tuple[SyncOpened, bool]:
        """Open the sync's log; and whether a cancel came meanwhile (runs that close their
        log open it anyway, to close it as cancelled)."""
        opening = workflow.start_local_activity_method(
            MetricSyncActivities.open_metric_sync,
            OpenSyncInput(
                sync_id=workflow.uuid4(),
                connection_id=request.connection_id,
                since=request.window_start,
                until=request.window_end,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="open sync log",
        )
        if not self._closes_its_log:
            return await opening, False
        try:  # a cancel while the log opens: the log is opened, then closed as cancelled
            return await asyncio.shield(opening), False
        except asyncio.CancelledError:
            return await opening, True

    async def _pull(
        self, request: MetricSyncInput, opened: SyncOpened, deadline: datetime
    ) -> tuple[PullResult | None, str | None, bool]:
        """Pull the window (the activity upserts page by page): what it pulled, or why it
        did not, and whether the sync was cancelled meanwhile."""
        left = deadline - workflow.now()
        if self._closes_its_log and left <= timedelta(0):
            return None, f"did not finish within {request.deadline}", False
        try:
            pulled = await workflow.execute_activity_method(
                MetricSyncActivities.pull_metrics,
                PullInput(
                    sync_id=opened.sync_id,
                    connection_id=request.connection_id,
                    since=opened.since,
                    until=opened.until,
                ),
                start_to_close_timeout=PULL_TIMEOUT,
                heartbeat_timeout=PULL_HEARTBEAT,
                # The deadline bounds every attempt and every wait between them.
                schedule_to_close_timeout=left if self._closes_its_log else None,
                retry_policy=PULL_RETRY,
                # A cancel waits for the pull to stop writing before the log is closed.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if self._closes_its_log
                else ActivityCancellationType.TRY_CANCEL,
                summary=f"pull {opened.platform} {opened.since}..{opened.until}",
                task_queue=activity_queue(SYNCS),
            )
        except ActivityError as failure:
            if self._closes_its_log and is_cancelled_exception(failure):
                return None, "cancelled", True
            if self._closes_its_log and out_of_time(failure):
                return None, f"did not finish within {request.deadline}", False
            return None, failure_reason(failure), False
        except asyncio.CancelledError:
            if not self._closes_its_log:
                raise
            return None, "cancelled", True
        return pulled, None, False

    async def _close(
        self,
        request: MetricSyncInput,
        opened: SyncOpened,
        status: SyncStatus,
        pulled: PullResult | None,
        error: str | None,
    ) -> None:
        """Close the sync's log as the sync ended (runs that close their log do so even if
        a cancel arrives meanwhile); a success advances last_synced_at over the window."""
        closing = workflow.start_local_activity_method(
            MetricSyncActivities.close_metric_sync,
            CloseSyncInput(
                sync_id=opened.sync_id,
                connection_id=request.connection_id,
                status=status,
                pulled=pulled,
                error_message=error,
                window_start=opened.window_start,
                window_end=opened.window_end,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"sync {status}",
        )
        await (despite_cancel(closing) if self._closes_its_log else closing)

    async def _tell(
        self, opened: SyncOpened, status: SyncStatus, pulled: PullResult | None, error: str | None
    ) -> None:
        """Notify the connection's owner of a sync that ended partial or failed."""
        reason = error
        if reason is None and pulled is not None and pulled.failures:
            first = pulled.failures[0]
            reason = (
                f"{len(pulled.failures)} page(s) failed; first: account {first.account_id} "
                f"{first.since}..{first.until}: {first.reason}"
            )
        await notify(
            NotificationEvent.model_validate(
                {
                    "event_type": f"sync.{status}",
                    "entity_type": "metric_sync",
                    "entity_id": opened.sync_id,
                    "title": opened.account[:500],
                    "old_status": "running",
                    "new_status": status,
                    "reason": (reason or "")[:2000] or None,
                }
            )
        )

    def _show(
        self,
        opened: SyncOpened,
        status: str,
        pulled: PullResult | None = None,
        error: str | None = None,
    ) -> None:
        lines = [
            f"**{opened.account}**",
            f"Window: {opened.since} → {opened.until} · status: {status}",
        ]
        if pulled is not None:
            lines.append(
                f"{pulled.pages} pages · {pulled.created} created · {pulled.updated} updated · "
                f"{pulled.unchanged} unchanged"
            )
            lines += [
                f"Failed: account {f.account_id} {f.since}..{f.until} page {f.page_index + 1}: "
                f"{f.reason}"
                for f in pulled.failures[:5]
            ]
        if error:
            lines.append(f"Error: {error}")
        workflow.set_current_details("\n\n".join(lines))


def _status(pulled: PullResult | None, error: str | None) -> SyncStatus:
    """Failed with an error, partial with failed pages, else a success."""
    if error:
        return "failed"
    if pulled is not None and pulled.failures:
        return "partial"
    return "success"


def _result(opened: SyncOpened, status: SyncStatus, pulled: PullResult) -> MetricSyncResult:
    return MetricSyncResult(
        sync_id=opened.sync_id,
        status=status,
        since=opened.since,
        until=opened.until,
        created=pulled.created,
        updated=pulled.updated,
        unchanged=pulled.unchanged,
        pages=pulled.pages,
        failed_pages=len(pulled.failures),
    )


@workflow.defn(name="ScheduleReconcile", failure_exception_types=[ValidationError])
class ScheduleReconcile:
    """Make the metric-sync schedules match platform_connections (runs on its own schedule)."""

    @workflow.run
    async def run(self, request: ScheduleReconcileInput) -> ReconcileResult:
        """Reconcile once (and sweep), and show what changed."""
        # Not in a finally: a run evicted from the cache is closed outside its event loop.
        result = await self._run(request)
        await handlers_done()
        return result

    async def _run(self, request: ScheduleReconcileInput) -> ReconcileResult:
        result = await workflow.execute_activity_method(
            ScheduleActivities.reconcile_metric_schedules,
            ReconcileInput(task_queue=request.task_queue or workflow.info().task_queue),
            start_to_close_timeout=RECONCILE_TIMEOUT,
            retry_policy=RECONCILE_RETRY,
            summary="reconcile metric-sync schedules",
        )
        details = f"Schedules: {result.summary()}"
        if workflow.patched(RECONCILE_HOUSEKEEPING):
            housekeeping = await self._housekeeping(request)
            details += "\n\nHousekeeping schedules: " + (
                housekeeping.summary() if housekeeping else "failed; next run retries"
            )
            if housekeeping and housekeeping.notes:
                details += "\n\n" + "\n".join(f"- {note}" for note in housekeeping.notes[:10])
        if workflow.patched(RECONCILE_SWEEPS):
            swept = await self._sweep()
            details += f"\n\nSweep: {swept.summary() if swept else 'failed; next run retries'}"
        workflow.set_current_details(details)
        return result

    async def _housekeeping(self, request: ScheduleReconcileInput) -> HousekeepingResult | None:
        """Token-refresh, retention and dashboard-refresh schedules: like the metric syncs'."""
        try:
            return await workflow.execute_activity_method(
                HousekeepingScheduleActivities.reconcile_housekeeping_schedules,
                HousekeepingReconcileInput(
                    task_queue=request.task_queue or workflow.info().task_queue
                ),
                start_to_close_timeout=RECONCILE_TIMEOUT,
                retry_policy=RECONCILE_RETRY,
                summary="reconcile housekeeping schedules",
            )
        except ActivityError as failure:
            workflow.logger.warning("housekeeping reconcile failed", exc_info=failure)
            return None

    async def _sweep(self) -> SweepResult | None:
        """Close the rows of workflows that ended without closing them (terminated, timed
        out): their own code can no longer do it."""
        try:
            return await workflow.execute_activity_method(
                SweepActivities.sweep_ended_workflows,
                SweepInput(),
                start_to_close_timeout=SWEEP_TIMEOUT,
                heartbeat_timeout=SWEEP_HEARTBEAT,
                retry_policy=SWEEP_RETRY,
                summary="close rows of ended workflows",
            )
        except ActivityError as failure:
            workflow.logger.warning("sweep failed", exc_info=failure)
            return None
