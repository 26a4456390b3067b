"""What the business metrics read from the database: a decision's latency and the state
gauges (open gates, sync lag and failures per platform)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("telemetry")


class ApprovalGauges(BaseModel):
    """The open gates: how many, how many expire within the warning window, the oldest's
    age in seconds."""

    pending: int
    expiring_soon: int
    oldest_seconds: float


class SyncGauges(BaseModel):
    """One platform's active connections: the longest time without a successful sync,
    and how many whose last sync failed."""

    platform: str
    lag_seconds: float | None
    failing: int


async def decision_seconds(conn: Conn, approval_id: UUID) -> float | None:
    """How long a decided gate waited for its decision (None: not decided, or unknown)."""
    row = await (await conn.execute(Q["approval_timing"], {"id": approval_id})).fetchone()
    if row is None or row["decided_at"] is None:
        return None
    return max((row["decided_at"] - row["created_at"]).total_seconds(), 0.0)


async def approval_gauges(conn: Conn, warning: timedelta) -> ApprovalGauges:
    """The open gates' gauges; expiring soon is within ``warning`` of the deadline."""
    row = await (await conn.execute(Q["approval_gauges"], {"warning": warning})).fetchone()
    assert row is not None  # an aggregate always returns its row
    return ApprovalGauges.model_validate(dict(row))


async def sync_gauges(conn: Conn) -> list[SyncGauges]:
    """Per platform with active connections, the sync lag and failing connections."""
    rows = await (await conn.execute(Q["sync_gauges"])).fetchall()
    return [SyncGauges.model_validate(dict(row)) for row in rows]
