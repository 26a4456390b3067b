"""Dashboard refresh: one materialized view, refreshed without pg_cron.

``CONCURRENTLY`` when the view has a unique index (its readers are not blocked), plainly
otherwise (the result says so: add a unique index). A refresh already running, from a
schedule, a trigger or by hand through this activity, makes this one a skip: the schedule
skips overlapping runs too (``SKIP``), the lock covers what it cannot see. The duration
is measured here and recorded on the view's row.
"""

from __future__ import annotations

import time

from psycopg import errors
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import heartbeating
from db import dashboards
from db.pool import Pool
from db.transitions import RowNotFound
from workflows.models.housekeeping import DashboardRefreshInput, DashboardRefreshResult

HEARTBEAT_EVERY = 5.0


class DashboardActivities:
    """Refreshes configured materialized views."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def refresh_dashboard_view(
        self, request: DashboardRefreshInput
    ) -> DashboardRefreshResult:
        """Refresh the view (concurrently where it can), unless a refresh of it is running."""
        async with self.pool.connection() as conn:
            try:
                view = await dashboards.view_info(conn, request.view_name)
            except RowNotFound:
                raise ApplicationError(
                    f"no materialized view {request.view_name}: create it, or remove or "
                    "deactivate its row in dashboard_refreshes",
                    type="ViewMissing",
                    non_retryable=True,
                ) from None
            started = time.monotonic()
            error: str | None = None
            try:
                async with heartbeating(every=HEARTBEAT_EVERY), conn.transaction():
                    refreshed = await dashboards.refresh_view(conn, view)
            except (errors.ObjectNotInPrerequisiteState, errors.FeatureNotSupported) as exc:
                refreshed, error = True, str(exc.diag.message_primary)
            duration_ms = int((time.monotonic() - started) * 1000)
            if not refreshed:
                return DashboardRefreshResult(
                    view_name=request.view_name,
                    skipped=True,
                    note="another refresh of this view was running",
                )
            await dashboards.record_refresh(
                conn,
                request.view_name,
                duration_ms=duration_ms,
                concurrently=view.concurrently,
                error=error,
            )
        if error is not None:
            raise ApplicationError(
                f"{request.view_name}: {error}", type="RefreshRefused", non_retryable=True
            )
        note = None
        if not view.concurrently:
            note = (
                "refreshed without CONCURRENTLY (readers waited): give the view a unique "
                "index on plain columns"
                if view.populated
                else "first refresh: the view held no data yet"
            )
        return DashboardRefreshResult(
            view_name=request.view_name,
            concurrently=view.concurrently,
            duration_ms=duration_ms,
            note=note,
        )
