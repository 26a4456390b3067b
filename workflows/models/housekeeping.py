"""What the housekeeping workflows take and give: token refresh, retention, dashboards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

Holder = Literal["connection", "threads"]  # platform_connections / threads_accounts
# revoked: the platform just said the grant is gone (the run suspends the holder);
# awaiting_reconnect: it was suspended before and nobody has reconnected it yet.
RefreshOutcome = Literal[
    "refreshed",
    "not_due",
    "never_expires",
    "inactive",
    "revoked",
    "awaiting_reconnect",
    "changed_meanwhile",
]
# A materialized view, as dashboard_refreshes names it: "name" or "schema.name".
VIEW_NAME = r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$"


class TokenRefreshInput(BaseModel):
    """Whose token to refresh when it is due."""

    holder: Holder
    holder_id: UUID


class TokenRefreshResult(BaseModel):
    """How the run ended; tokens never appear here."""

    holder: Holder
    holder_id: UUID
    label: str
    outcome: RefreshOutcome
    expires_at: datetime | None = None
    reason: str | None = None
    paused: list[str] = []  # schedules paused because the credentials failed for good
    notified: bool = False


class RetentionInput(BaseModel):
    """How big each batch is (each is one short transaction) and, for tests, at most how
    many batches one run deletes (the next run goes on)."""

    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    max_batches: Annotated[int | None, Field(ge=1)] = None


class TargetOutcome(BaseModel):
    """What retention did to one kind of record."""

    entity_type: str
    archived: int = 0
    purged: int = 0
    skipped: str | None = None  # why this kind was left alone (no policy, no table)


class RetentionResult(BaseModel):
    """Counts per kind of record."""

    targets: list[TargetOutcome] = []

    def summary(self) -> str:
        """One line for operators."""
        parts = [
            f"{t.entity_type}: {t.archived} archived, {t.purged} deleted"
            if t.skipped is None
            else f"{t.entity_type}: skipped ({t.skipped})"
            for t in self.targets
        ]
        return "; ".join(parts) or "nothing to do"


class DashboardRefreshInput(BaseModel):
    """The materialized view to refresh."""

    view_name: Annotated[str, Field(pattern=VIEW_NAME)]


class DashboardRefreshResult(BaseModel):
    """How the refresh went: skipped (another was running), how, and how long it took."""

    view_name: str
    skipped: bool = False
    concurrently: bool = False
    duration_ms: int = 0
    note: str | None = None
