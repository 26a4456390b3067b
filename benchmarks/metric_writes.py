"""Scenario 4: metric rows through the sync's write path vs a raw COPY of the same rows."""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from activities.connectors import meta
from benchmarks.common import insert_users, rate, ratio
from benchmarks.stack import BenchStack
from db import metrics
from db.metrics import MetricValue
from devstack.emulators import google_ads  # its page size is the real API's fixed 10,000 rows
from workers.settings import Settings

METRIC_TYPES = ("impressions", "clicks", "spend", "conversions")  # per campaign x day row
DAYS = 30
META_VERSION = Settings.model_fields["meta_graph_api_version"].default
# What one upsert call receives: one API page of campaign x day rows, 4 values per row.
PAGE_VALUES = {
    "meta": meta.PAGE_LIMIT * len(METRIC_TYPES),
    "google_ads": google_ads.PAGE_SIZE * len(METRIC_TYPES),
}
RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw_metrics (
    platform_connection_id uuid, platform varchar(50), entity_id text,
    metric_type varchar(50), date date, value numeric, source varchar(50),
    source_detail jsonb, sync_id uuid
)
"""
COPY = (
    "COPY bench_raw_metrics (platform_connection_id, platform, entity_id, metric_type, date, "
    "value, source, source_detail, sync_id) FROM STDIN"
)


# Postgres zero-fills each new WAL segment (16 MB) the first time its WAL grows that far; a
# database in service reuses its old segments instead. A fresh stack's first run created up
# to max_wal_size of them while it wrote and measured that, not the write path. A run
# writes about WAL_PER_ROW bytes of WAL a row: two upserts of ~580 and COPY's ~250.
WAL_PER_ROW = 1400
WAL_WARMUP = """
INSERT INTO bench_wal_warmup
SELECT g, repeat('x', 1500)
FROM generate_series(1, (SELECT least(setting::bigint * 1024 * 1024, %(bytes)s) / 1600
                         FROM pg_settings WHERE name = 'max_wal_size')) AS g
"""
# Bytes of WAL segments created (zero-filled) so far; Postgres 18's pg_stat_io.
WAL_CREATED = (
    "SELECT coalesce(sum(write_bytes), 0)::bigint AS created FROM pg_stat_io "
    "WHERE object = 'wal' AND context = 'init'"
)


async def warm_wal(stack: BenchStack, rows: int) -> None:
    """Write the WAL a run of ``rows`` writes (at most max_wal_size) and checkpoint, so the
    runs reuse segments as a database in service does rather than creating them."""
    async with stack.pool.connection() as conn:
        await conn.execute("CREATE TABLE bench_wal_warmup (g bigint, pad text)")
        await conn.execute(WAL_WARMUP, {"bytes": rows * WAL_PER_ROW})
        await conn.execute("DROP TABLE bench_wal_warmup")
        await conn.execute("CHECKPOINT")


async def wal_created_mb(stack: BenchStack) -> float:
    """MB of WAL segments Postgres has created (zero-filled) since it started."""
    async with stack.pool.connection() as conn:
        row = await (await conn.execute(WAL_CREATED)).fetchone()
    return round(row["created"] / 1e6, 1) if row else 0.0


def metric_values(count: int) -> list[MetricValue]:
    """``count`` distinct values: campaigns x days x the four metric types."""
    first = date(2025, 1, 1)
    detail = {"platform": "meta", "account_id": "act_bench", "api_version": META_VERSION}
    values = []
    for i in range(count):
        row, metric = divmod(i, len(METRIC_TYPES))
        campaign, day = divmod(row, DAYS)
        values.append(
            MetricValue(
                entity_id=f"cmp-{campaign}",
                metric_type=METRIC_TYPES[metric],
                date=first + timedelta(days=day),
                value=Decimal(i % 997) + Decimal("0.25"),
                source_detail=detail | {"campaign_name": f"Campaign {campaign}"},
            )
        )
    return values


async def _connection(stack: BenchStack, platform: metrics.Platform) -> uuid.UUID:
    """A connection made by a user, as the app makes them: in the user's organization
    (0027), so each row written carries it and its foreign key is checked."""
    connection_id, owner = uuid.uuid4(), uuid.uuid4()
    async with stack.pool.connection() as conn:
        async with conn.cursor() as cur:
            await insert_users(cur, [owner], who=f"metrics-{platform}")
        await metrics.insert_connection(
            conn,
            connection_id=connection_id,
            platform=platform,
            credentials={},
            account_id=f"bench-{connection_id.hex[:8]}",
            account_name=None,
            sync_frequency=24,
            created_by=owner,
        )
    return connection_id


async def _upsert_seconds(
    stack: BenchStack,
    values: list[MetricValue],
    platform: metrics.Platform,
    connection_id: uuid.UUID,
    sync_id: uuid.UUID,
) -> float:
    """Seconds to write ``values`` through ``upsert_metric_page`` from the pool, pages
    gathered as ``MetricSyncActivities._pull_slice`` gathers them (until they hold
    ``METRIC_SYNC_WRITE_VALUES``, by default); every row must land."""
    page = PAGE_VALUES[platform]
    write_values = Settings.model_fields["metric_sync_write_values"].default
    per_write = page * -(-write_values // page)
    written = 0
    started = time.perf_counter()
    for offset in range(0, len(values), per_write):
        counts = await metrics.upsert_metric_page(
            stack.pool,
            connection_id=connection_id,
            platform=platform,
            sync_id=sync_id,
            values=values[offset : offset + per_write],
        )
        written += counts.created + counts.updated
    seconds = time.perf_counter() - started
    assert written == len(values), f"upserted {written} of {len(values)} rows"
    return seconds


async def upsert_rate(
    stack: BenchStack, values: list[MetricValue], platform: metrics.Platform
) -> float:
    """Rows per second through ``upsert_metric_page``, all of ``values`` at once."""
    connection_id = await _connection(stack, platform)
    seconds = await _upsert_seconds(stack, values, platform, connection_id, uuid.uuid4())
    return rate(len(values), seconds)


async def _copy_seconds(
    stack: BenchStack, values: list[MetricValue], connection_id: uuid.UUID, sync_id: uuid.UUID
) -> float:
    """Seconds of a raw COPY of ``values`` into the plain table."""
    started = time.perf_counter()
    async with stack.pool.connection() as conn, conn.cursor() as cur, cur.copy(COPY) as copy:
        for v in values:
            await copy.write_row(
                (
                    connection_id,
                    "meta",
                    v.entity_id,
                    v.metric_type,
                    v.date,
                    v.value,
                    "api_sync",
                    Jsonb(v.source_detail),
                    sync_id,
                )
            )
    return time.perf_counter() - started


async def _raw_table(stack: BenchStack) -> None:
    async with stack.pool.connection() as conn:
        await conn.execute(RAW_TABLE)
        await conn.execute("TRUNCATE bench_raw_metrics")


async def copy_rate(stack: BenchStack, values: list[MetricValue]) -> float:
    """Rows per second of a raw COPY of the same rows into a plain table."""
    await _raw_table(stack)
    seconds = await _copy_seconds(stack, values, uuid.uuid4(), uuid.uuid4())
    return rate(len(values), seconds)


async def metric_upserts(stack: BenchStack, rows: int) -> dict[str, Any]:
    """Upsert ``rows`` new rows with each platform's page size, then COPY them raw."""
    values = metric_values(rows)
    meta_rate = await upsert_rate(stack, values, "meta")
    google_rate = await upsert_rate(stack, values, "google_ads")
    raw_rate = await copy_rate(stack, values)
    return _figures(rows, meta_rate, google_rate, raw_rate)


async def metric_upserts_interleaved(stack: BenchStack, rows: int) -> dict[str, Any]:
    """As ``metric_upserts``, in slices of whole pages of both platforms (five for a
    million rows), the three writers taking turns in a rotating order: a machine whose
    load drifts during the run (other work on its cores, a checkpoint) weighs on all
    three alike, so the ratios measure the write path, not the moment."""
    values = metric_values(rows)
    page = max(PAGE_VALUES.values())  # a multiple of the other
    size = page * max(1, rows // (page * 5))
    meta_id, google_id = await _connection(stack, "meta"), await _connection(stack, "google_ads")
    await _raw_table(stack)
    meta_sync, google_sync, raw_sync, raw_id = (uuid.uuid4() for _ in range(4))
    seconds = {"meta": 0.0, "google_ads": 0.0, "copy": 0.0}
    for turn, offset in enumerate(range(0, rows, size)):
        part = values[offset : offset + size]
        names = list(seconds)
        for name in names[turn % 3 :] + names[: turn % 3]:
            if name == "copy":
                seconds[name] += await _copy_seconds(stack, part, raw_id, raw_sync)
            elif name == "meta":
                seconds[name] += await _upsert_seconds(stack, part, "meta", meta_id, meta_sync)
            else:
                seconds[name] += await _upsert_seconds(
                    stack, part, "google_ads", google_id, google_sync
                )
    figures = _figures(
        rows,
        rate(rows, seconds["meta"]),
        rate(rows, seconds["google_ads"]),
        rate(rows, seconds["copy"]),
    )
    return figures | {"slices": -(-rows // size)}


def _figures(rows: int, meta_rate: float, google_rate: float, raw_rate: float) -> dict[str, Any]:
    return {
        "rows": rows,
        "meta_page_values": PAGE_VALUES["meta"],
        "google_ads_page_values": PAGE_VALUES["google_ads"],
        "upsert_meta_rows_per_s": meta_rate,
        "upsert_google_ads_rows_per_s": google_rate,
        "copy_rows_per_s": raw_rate,
        "ratio_meta": ratio(meta_rate, raw_rate),
        "ratio_google_ads": ratio(google_rate, raw_rate),
    }
