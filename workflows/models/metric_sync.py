"""What a metric sync and the schedule reconciler take and give."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

SyncStatus = Literal["success", "partial", "failed"]
# A sync ends by its own deadline, with time to close its log before a schedule's execution
# timeout (6 h, activities/metric_schedules.py) would terminate it without cleanup.
SYNC_DEADLINE = timedelta(hours=5)
MAX_SYNC_DEADLINE = timedelta(days=1)


class MetricSyncInput(BaseModel):
    """A connection to sync; with both dates, that explicit window (a backfill)."""

    connection_id: UUID
    window_start: date | None = None
    window_end: date | None = None
    deadline: Annotated[timedelta, Field(gt=timedelta(0), le=MAX_SYNC_DEADLINE)] = SYNC_DEADLINE

    @model_validator(mode="after")
    def _both_or_neither(self) -> MetricSyncInput:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("a backfill needs both window_start and window_end")
        return self


class MetricSyncResult(BaseModel):
    """How the sync ended: counts, never rows."""

    sync_id: UUID
    status: SyncStatus
    since: date
    until: date
    created: int
    updated: int
    unchanged: int
    pages: int
    failed_pages: int


class ScheduleReconcileInput(BaseModel):
    """Whose schedules to reconcile; default: the task queue this workflow runs on."""

    task_queue: str | None = None
