"""Ad-platform connections, their metrics and sync logs: rows and one function per transition."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.binary_arrays import UuidArray, date_array, int4_array, text_array, uuid7_array
from db.pool import Pool
from db.queries import load_queries
from db.transitions import NOW, Conn, RowNotFound, TransitionContext, transition

Q = load_queries("metrics")
Platform = Literal["meta", "google_ads"]
SyncStatus = Literal["running", "success", "partial", "failed"]
SyncOutcome = Literal["success", "partial", "failed"]
# Values per upsert statement. A page goes as several statements in one pipeline, so
# Postgres writes one chunk while the next is encoded. 500, not 200: each statement has a
# fixed cost (planning, the connection's organization read once, the counts); on 2 busy
# cores 200,000 values in Meta's pages went at 1.5-1.6x the rate of chunks of 200 in two
# rounds (docs/performance.md, "Metric rows").
UPSERT_CHUNK = 500
# A page of at least this many values is written by two connections at once. Measured on
# 2 busy cores: 1.1-1.3x for 2,000-value pages (Meta), 1.2-1.3x for 40,000 (Google Ads);
# 400-value pages gained nothing and cost 20 % more client CPU.
SPLIT_PAGE_VALUES = 800


class ConnectionRow(BaseModel):
    """A row of ``platform_connections`` (credentials stay encrypted)."""

    id: UUID
    platform: str
    credentials: dict[str, Any]
    account_id: str
    account_name: str | None
    login_customer_id: str | None = None  # Google Ads: the manager account it is reached by
    is_active: bool
    last_synced_at: datetime | None
    sync_frequency: int
    created_at: datetime
    created_by: UUID | None
    updated_at: datetime
    # Renewing credentials (0023): when the stored token expires, and whether they work.
    token_expires_at: datetime | None = None
    credentials_status: Literal["ok", "revoked"] = "ok"
    credentials_error: str | None = None

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
    login_customer_id: str | None = None,
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
            "login_customer_id": login_customer_id,
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


async def abandon_sync_log(
    conn: Conn, sync_id: UUID, ctx: TransitionContext, *, reason: str
) -> SyncLogRow:
    """running → failed for a sync whose workflow ended without closing its log (terminated,
    timed out): the counts it wrote are unknown, so they are left as they were."""
    row = await transition(
        conn,
        table="metric_sync_logs",
        entity_id=sync_id,
        to_status="failed",
        from_statuses=["running"],
        ctx=ctx,
        values={"end_time": NOW, "error_message": reason},
    )
    return SyncLogRow.model_validate(row)


async def upsert_metric_page(
    pool: Pool,
    *,
    connection_id: UUID,
    platform: str,
    sync_id: UUID,
    values: Sequence[MetricValue],
) -> UpsertCounts:
    """Upsert one API page of values from pooled connections; count what it did.

    A page of ``SPLIT_PAGE_VALUES`` or more is split in two halves with disjoint keys, the
    first and second half of its distinct keys, written concurrently, each in a transaction
    of its own on its own connection: Postgres works on both at once. Such a page is not
    all or nothing: after a failure some of it may be written, and the caller must write
    the whole page again (the upsert makes that harmless). A smaller page is one transaction.
    """

    async def write(part: list[MetricValue]) -> UpsertCounts:
        async with pool.connection() as conn:
            return await _write(conn, connection_id, platform, sync_id, part)

    batch = _latest(values)
    if len(batch) < SPLIT_PAGE_VALUES:
        return await write(batch)
    middle = len(batch) // 2
    try:
        # Keys are disjoint, so the halves never wait on each other's rows; both take the
        # foreign key's KEY SHARE lock on the connection row, which do not conflict.
        async with asyncio.TaskGroup() as group:
            halves = [group.create_task(write(h)) for h in (batch[:middle], batch[middle:])]
    except ExceptionGroup as failed:
        # The other half has finished, or the group cancelled it and waited: psycopg cancels
        # its query, its transaction rolls back, its connection goes back to the pool idle.
        raise failed.exceptions[0] from None
    first, second = (h.result() for h in halves)
    return UpsertCounts(
        created=first.created + second.created,
        updated=first.updated + second.updated,
        unchanged=first.unchanged + second.unchanged,
    )


async def upsert_metric_batch(
    conn: Conn,
    *,
    connection_id: UUID,
    platform: str,
    sync_id: UUID,
    values: Sequence[MetricValue],
) -> UpsertCounts:
    """Upsert values on one connection, all or nothing; count inserted, changed and unchanged.

    Runs in a transaction of its own, or in a savepoint of the caller's open transaction.
    """
    return await _write(conn, connection_id, platform, sync_id, _latest(values))


def _latest(values: Sequence[MetricValue]) -> list[MetricValue]:
    """One value per natural key, the last one sent."""
    return list({(v.entity_id, v.metric_type, v.date): v for v in values}.values())


async def _write(
    conn: Conn, connection_id: UUID, platform: str, sync_id: UUID, batch: list[MetricValue]
) -> UpsertCounts:
    """Upsert values with distinct keys in one transaction (or savepoint), chunk by chunk."""
    if not batch:
        return UpsertCounts()
    written = []
    # One pipeline, one round trip; a failure rolls the whole batch back.
    async with conn.pipeline(), conn.transaction():
        for start in range(0, len(batch), UPSERT_CHUNK):
            chunk = batch[start : start + UPSERT_CHUNK]
            params = _chunk_params(chunk, uuid7_array(len(chunk)))
            params |= {"connection_id": connection_id, "platform": platform, "sync_id": sync_id}
            written.append(await conn.execute(Q["upsert_metric_batch"], params))
    created = updated = 0
    for cursor in written:
        row = await cursor.fetchone()
        assert row is not None
        created, updated = created + row["created"], updated + row["updated"]
    return UpsertCounts(created=created, updated=updated, unchanged=len(batch) - created - updated)


def _chunk_params(chunk: Sequence[MetricValue], ids: UuidArray) -> dict[str, Any]:
    """A chunk as column arrays in binary; a source_detail shared by many values is sent
    (and parsed) once. Values go as text, parsed by Postgres: exact, whatever their scale."""
    details: list[Jsonb] = []
    position: dict[str, int] = {}
    detail_ns = []
    for v in chunk:
        # Dicts of JSON values with equal reprs serialize to the same JSON; repr is 3x cheaper.
        key = repr(v.source_detail)
        n = position.get(key)
        if n is None:
            details.append(Jsonb(v.source_detail))
            n = position[key] = len(details)  # 1-based, as SQL arrays
        detail_ns.append(n)
    return {
        "ids": ids,
        "entity_ids": text_array([v.entity_id for v in chunk]),
        "metric_types": text_array([v.metric_type for v in chunk]),
        "dates": date_array([v.date for v in chunk]),
        "values": text_array([str(v.value) for v in chunk]),
        "detail_ns": int4_array(detail_ns),
        "source_details": details,
    }


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
