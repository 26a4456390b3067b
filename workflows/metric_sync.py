"""MetricSync: pull an ad account's daily campaign metrics into performance_metrics.

open the sync log (window since last_synced_at minus the lookback, or an explicit
backfill window) → pull every page, upserting as it goes → close the log as success,
partial or failed and, after a success, advance last_synced_at over the window.
ScheduleReconcile keeps one schedule per connection in step with platform_connections.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.metric_sync import (
        CloseSyncInput,
        MetricSyncActivities,
        OpenSyncInput,
        PullInput,
        PullResult,
        ReconcileInput,
        ReconcileResult,
        ScheduleActivities,
        SyncOpened,
    )
    from workflows.models.metric_sync import (
        MetricSyncInput,
        MetricSyncResult,
        ScheduleReconcileInput,
        SyncStatus,
    )
    from workflows.policies import DB_RETRY, DB_TIMEOUT
    from workflows.search_attributes import CONNECTION_ID, PLATFORM, SYNC_OUTCOME

PULL_TIMEOUT = timedelta(hours=2)
# The pull heartbeats every page and every few seconds while it waits: a dead worker's
# pull resumes on another worker within this, from its last heartbeat.
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


@workflow.defn(name="MetricSync", failure_exception_types=[ValidationError])
class MetricSync:
    """One sync of one ad-platform connection, scheduled or backfilled."""

    @workflow.run
    async def run(self, request: MetricSyncInput) -> MetricSyncResult:
        """Open the log, pull, close; a failed sync fails the workflow after closing its log."""
        workflow.upsert_search_attributes([CONNECTION_ID.value_set(str(request.connection_id))])
        opened = await workflow.execute_local_activity_method(
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
        workflow.upsert_search_attributes([PLATFORM.value_set(opened.platform)])
        self._show(opened, "pulling")
        pulled: PullResult | None = None
        error: str | None = None
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
                retry_policy=PULL_RETRY,
                summary=f"pull {opened.platform} {opened.since}..{opened.until}",
            )
        except ActivityError as failure:
            error = _failure_reason(failure)
        status: SyncStatus = "success"
        if error:
            status = "failed"
        elif pulled is not None and pulled.failures:
            status = "partial"
        await workflow.execute_local_activity_method(
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
        workflow.upsert_search_attributes([SYNC_OUTCOME.value_set(status)])
        self._show(opened, status, pulled, error)
        if error:
            raise ApplicationError(
                f"metric sync failed: {error}", type="MetricSyncFailed", non_retryable=True
            )
        assert pulled is not None
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


@workflow.defn(name="ScheduleReconcile", failure_exception_types=[ValidationError])
class ScheduleReconcile:
    """Make the metric-sync schedules match platform_connections (runs on its own schedule)."""

    @workflow.run
    async def run(self, request: ScheduleReconcileInput) -> ReconcileResult:
        """Reconcile once and show what changed."""
        result = await workflow.execute_activity_method(
            ScheduleActivities.reconcile_metric_schedules,
            ReconcileInput(task_queue=request.task_queue or workflow.info().task_queue),
            start_to_close_timeout=RECONCILE_TIMEOUT,
            retry_policy=RECONCILE_RETRY,
            summary="reconcile metric-sync schedules",
        )
        workflow.set_current_details(f"Schedules: {result.summary()}")
        return result


def _failure_reason(failure: ActivityError) -> str:
    cause = failure.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or failure)
