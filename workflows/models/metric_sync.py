"""What a metric sync and the schedule reconciler take and give."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, model_validator

SyncStatus = Literal["success", "partial", "failed"]


class MetricSyncInput(BaseModel):
    """A connection to sync; with both dates, that explicit window (a backfill)."""

    connection_id: UUID
    window_start: date | None = None
    window_end: date | None = None

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
