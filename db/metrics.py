"""Ad-platform connections, their metrics and sync logs: rows and one function per transition."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import NOW, Conn, RowNotFound, TransitionContext, transition

Q = load_queries("metrics")
Platform = Literal["meta", "google_ads"]
SyncStatus = Literal["running", "success", "partial", "failed"]
SyncOutcome = Literal["success", "partial", "failed"]


class ConnectionRow(BaseModel):
    """A row of ``platform_connections`` (credentials stay encrypted)."""

    id: UUID
    platform: str
    credentials: dict[str, Any]
    account_id: str
    account_name: str | None
    is_active: bool
    last_synced_at: datetime | None
    sync_frequency: int
    created_at: datetime
    created_by: UUID | None
    updated_at: datetime

    @property
    def label(self) -> str:
        """How operators recognise the connection: platform and account."""
        name = f" ({self.account_name})" if self.account_name else ""
        return f"{self.platform} account {self.account_id}{name}"


class SyncLogRow(BaseModel):
    """A row of ``metric_sync_logs``."""

    id: UUID
    platform_connection_id: UUID | None
    status: SyncStatus
    start_time: datetime
    end_time: datetime | None
    metrics_updated: int
    metrics_created: int
    error_message: str | None
    details: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    temporal_workflow_id: str | None
    temporal_run_id: str | None


class MetricValue(BaseModel):
    """One normalized value of one campaign on one day, ready to upsert."""

    entity_id: str
    metric_type: str
    date: date
    value: Decimal
    source_detail: dict[str, Any]


class UpsertCounts(BaseModel):
    """What an upsert did: rows inserted, rows whose value changed, rows left as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


async def insert_connection(
    conn: Conn,
    *,
    connection_id: UUID,
    platform: Platform,
    credentials: dict[str, Any],
    account_id: str,
    account_name: str | None,
    sync_frequency: int,
    created_by: UUID | None,
) -> ConnectionRow:
    """Create the connection if it does not exist; return it either way."""
    await conn.execute(
        Q["insert_connection"],
        {
            "id": connection_id,
            "platform": platform,
            "credentials": Jsonb(credentials),
            "account_id": account_id,
            "account_name": account_name,
            "sync_frequency": sync_frequency,
            "created_by": created_by,
        },
    )
    return await get_connection(conn, connection_id)


async def get_connection(conn: Conn, connection_id: UUID) -> ConnectionRow:
    """The connection row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_connection"], {"id": connection_id})).fetchone()
    if row is None:
        raise RowNotFound("platform_connections", connection_id)
    return ConnectionRow.model_validate(row)


async def list_connections(conn: Conn) -> list[ConnectionRow]:
    """Every connection, active or not."""
    rows = await (await conn.execute(Q["list_connections"])).fetchall()
    return [ConnectionRow.model_validate(r) for r in rows]


async def open_sync_log(
    conn: Conn,
    *,
    sync_id: UUID,
    connection_id: UUID,
    window_start: datetime,
    window_end: datetime,
    workflow_id: str,
    run_id: str,
) -> SyncLogRow:
    """Open the sync's log (status running); a retry returns the row it opened."""
    await conn.execute(
        Q["open_sync_log"],
        {
            "id": sync_id,
            "connection_id": connection_id,
            "window_start": window_start,
            "window_end": window_end,
            "workflow_id": workflow_id,
            "run_id": run_id,
        },
    )
    return await get_sync_log(conn, sync_id)


async def get_sync_log(conn: Conn, sync_id: UUID) -> SyncLogRow:
    """The sync log row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_sync_log"], {"id": sync_id})).fetchone()
    if row is None:
        raise RowNotFound("metric_sync_logs", sync_id)
    return SyncLogRow.model_validate(row)


async def list_sync_logs(
    conn: Conn, *, connection_id: UUID | None = None, limit: int = 20
) -> list[SyncLogRow]:
    """Most recent sync logs first."""
    rows = await (
        await conn.execute(Q["list_sync_logs"], {"connection_id": connection_id, "limit": limit})
    ).fetchall()
    return [SyncLogRow.model_validate(r) for r in rows]


async def close_sync_log(
    conn: Conn,
    sync_id: UUID,
    ctx: TransitionContext,
    *,
    status: SyncOutcome,
    created: int,
    updated: int,
    details: dict[str, Any],
    error_message: str | None = None,
) -> SyncLogRow:
    """running → success, partial or failed, with the counts and what failed."""
    row = await transition(
        conn,
        table="metric_sync_logs",
        entity_id=sync_id,
        to_status=status,
        from_statuses=["running"],
        ctx=ctx,
        values={
            "end_time": NOW,
            "metrics_created": created,
            "metrics_updated": updated,
            "details": Jsonb(details),
            "error_message": error_message,
        },
    )
    return SyncLogRow.model_validate(row)


async def upsert_metric_batch(
    conn: Conn,
    *,
    connection_id: UUID,
    platform: str,
    sync_id: UUID,
    values: Sequence[MetricValue],
) -> UpsertCounts:
    """Upsert one page of values in one round trip; count inserted, changed and unchanged."""
    latest = {(v.entity_id, v.metric_type, v.date): v for v in values}  # one row per key
    batch = list(latest.values())
    if not batch:
        return UpsertCounts()
    rows = await (
        await conn.execute(
            Q["upsert_metric_batch"],
            {
                "connection_id": connection_id,
                "platform": platform,
                "sync_id": sync_id,
                "entity_ids": [v.entity_id for v in batch],
                "metric_types": [v.metric_type for v in batch],
                "dates": [v.date for v in batch],
                "values": [v.value for v in batch],
                "source_details": [Jsonb(v.source_detail) for v in batch],
            },
        )
    ).fetchall()
    created = sum(1 for r in rows if r["inserted"])
    updated = len(rows) - created
    return UpsertCounts(created=created, updated=updated, unchanged=len(batch) - len(rows))


async def advance_last_synced(
    conn: Conn, connection_id: UUID, *, window_start: datetime, synced_to: datetime
) -> datetime | None:
    """Move ``last_synced_at`` to ``synced_to`` if the window joins what was synced before.

    Returns the new value, or None when it did not move (a window beyond a gap, or one
    that ends before what is already synced).
    """
    row = await (
        await conn.execute(
            Q["advance_last_synced"],
            {"id": connection_id, "window_start": window_start, "synced_to": synced_to},
        )
    ).fetchone()
    return row["last_synced_at"] if row else None
