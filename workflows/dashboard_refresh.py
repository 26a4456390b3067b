"""DashboardRefresh: refresh one materialized view, on its schedule, without pg_cron.

The schedule (``dashboard-refresh-<view>``) skips a run while the previous one is still
going; the activity also skips if any other refresh of the view holds its lock. The
duration and how it was refreshed (concurrently or not) show in the details.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.ending import failing_in_words, handlers_done

with workflow.unsafe.imports_passed_through():
    from activities.dashboards import DashboardActivities
    from workflows.models.housekeeping import DashboardRefreshInput, DashboardRefreshResult

REFRESH_TIMEOUT = timedelta(hours=1)
REFRESH_HEARTBEAT = timedelta(seconds=30)
REFRESH_RETRY = RetryPolicy(
    maximum_attempts=3,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ViewMissing", "RefreshRefused"],
)


@workflow.defn(name="DashboardRefresh", failure_exception_types=[ValidationError])
class DashboardRefresh:
    """One refresh of one view."""

    @workflow.run
    async def run(self, request: DashboardRefreshInput) -> DashboardRefreshResult:
        """Refresh (or skip); show how long it took."""
        with failing_in_words():
            result = await workflow.execute_activity_method(
                DashboardActivities.refresh_dashboard_view,
                request,
                start_to_close_timeout=REFRESH_TIMEOUT,
                heartbeat_timeout=REFRESH_HEARTBEAT,
                retry_policy=REFRESH_RETRY,
                summary=f"refresh {request.view_name}",
            )
        if result.skipped:
            details = f"**{result.view_name}**: skipped ({result.note})"
        else:
            how = "concurrently" if result.concurrently else "blocking readers"
            details = f"**{result.view_name}**: refreshed {how} in {result.duration_ms} ms"
            if result.note:
                details += f"\n\n{result.note}"
        workflow.set_current_details(details)
        await handlers_done()
        return result
