"""A big page written by two connections at once: the same rows and counts as one writer,
one transaction per half, and a failing half that propagates, cancels the other half, leaves
the pool clean, and a rerun of the page that completes it."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import psycopg
import pytest

from db import metrics
from db.metrics import SPLIT_PAGE_VALUES, MetricValue, UpsertCounts
from db.pool import Pool, connect
from tests.metrics.test_metric_upsert import key, new_connection, page, stored, upsert
from tests.waiting import eventually

BIG = SPLIT_PAGE_VALUES * 2 + 40  # distinct values of a page written in two halves


async def write_page(
    pool: Pool, connection_id: uuid.UUID, sync_id: uuid.UUID, values: list[MetricValue]
) -> UpsertCounts:
    return await metrics.upsert_metric_page(
        pool, connection_id=connection_id, platform="meta", sync_id=sync_id, values=values
    )


async def rows_per_transaction(pool: Pool, connection_id: uuid.UUID) -> list[int]:
    """How many of the connection's rows each writing transaction left, fewest first."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT count(*) AS n FROM performance_metrics WHERE platform_connection_id = %s "
                "GROUP BY xmin::text ORDER BY n",
                (connection_id,),
            )
        ).fetchall()
    return [r["n"] for r in rows]


async def busy_backends(pool: Pool, *, besides: int | None = None) -> list[dict[str, object]]:
    """Backends of this database running a query or holding a transaction open."""
    async with pool.connection() as conn:
        return await (
            await conn.execute(
                "SELECT pid, state, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() AND pid IS DISTINCT FROM %s AND state <> 'idle'",
                (besides,),
            )
        ).fetchall()


async def assert_connections_back_and_sound(pool: Pool) -> None:
    """Every pooled connection is back in the pool, none came back broken. A connection
    returned mid-query (the cancelled half's, on a loaded machine) is closed and replaced
    by the pool's own task, so the pool is given a few seconds to fill up again; a
    connection that was never returned keeps it short for good."""
    await eventually(
        lambda: pool.get_stats()["pool_available"] == pool.get_stats()["pool_size"],
        timeout=10,
        what=f"every connection back in the pool {pool.get_stats()}",
    )
    assert pool.get_stats().get("returns_bad", 0) == 0, "a connection came back broken"


def with_bad_last_value(values: list[MetricValue]) -> list[MetricValue]:
    """The page with its last value (in the second half) one Postgres refuses: NaN is not JSON."""
    bad = [v.model_copy() for v in values]
    bad[-1] = bad[-1].model_copy(update={"source_detail": {"score": float("nan")}})
    return bad


async def test_a_big_page_goes_as_two_transactions_with_the_rows_and_counts_of_one(
    pool: Pool,
) -> None:
    one_writer, two_writers, small = [await new_connection(pool) for _ in range(3)]
    sync_id = uuid.uuid4()
    values = page(BIG)
    # The first key again at the end: the last value wins although it sits in the other half.
    values.append(values[0].model_copy(update={"value": Decimal("42"), "source_detail": {}}))

    by_one = await upsert(pool, one_writer, sync_id, values)
    by_two = await write_page(pool, two_writers, sync_id, values)
    by_small = await write_page(pool, small, sync_id, page(SPLIT_PAGE_VALUES - 1))

    assert by_one == by_two == UpsertCounts(created=BIG, updated=0, unchanged=0)
    columns = ("value", "source_detail", "sync_id", "source", "platform")
    one_rows, two_rows = await stored(pool, one_writer), await stored(pool, two_writers)
    assert one_rows.keys() == two_rows.keys() == {key(v) for v in values}
    for k, row in two_rows.items():
        assert [row[c] for c in columns] == [one_rows[k][c] for c in columns]
    assert two_rows[key(values[0])]["value"] == Decimal("42")
    assert await rows_per_transaction(pool, one_writer) == [BIG]
    assert await rows_per_transaction(pool, two_writers) == [BIG // 2, BIG - BIG // 2]
    assert by_small.created == SPLIT_PAGE_VALUES - 1
    assert await rows_per_transaction(pool, small) == [SPLIT_PAGE_VALUES - 1]

    resent = [v.model_copy() for v in values]
    resent[1].value += 1  # first half
    resent[-2].value += 1  # second half
    again = await write_page(pool, two_writers, uuid.uuid4(), resent)
    assert again == UpsertCounts(created=0, updated=2, unchanged=BIG - 2)


async def test_a_failing_half_propagates_and_a_rerun_of_the_page_completes_it(
    pool: Pool,
) -> None:
    connection_id, sync_id = await new_connection(pool), uuid.uuid4()
    values = page(BIG)
    first_half = {key(v) for v in values[: BIG // 2]}
    tasks = asyncio.all_tasks()

    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        await write_page(pool, connection_id, sync_id, with_bad_last_value(values))

    left_behind = asyncio.all_tasks() - tasks  # tasks that existed before may finish
    assert not left_behind, f"a half's task outlived the page: {left_behind}"
    await assert_connections_back_and_sound(pool)
    assert await busy_backends(pool) == []
    # The first half committed or was cancelled; the failed half wrote nothing.
    assert set(await stored(pool, connection_id)) <= first_half
    rerun = await write_page(pool, connection_id, sync_id, values)
    rows = await stored(pool, connection_id)
    assert (rerun.created + rerun.unchanged, rerun.updated) == (BIG, 0)
    assert {k: r["value"] for k, r in rows.items()} == {key(v): v.value for v in values}


async def test_a_failing_half_cancels_the_other_half_instead_of_waiting_for_it(
    pool: Pool, db_url: str
) -> None:
    connection_id, sync_id = await new_connection(pool), uuid.uuid4()
    values = page(BIG)
    blocked = values[0]  # the first value of the first half
    old = blocked.model_copy(update={"value": Decimal("-1")})
    await upsert(pool, connection_id, sync_id, [old])
    tasks = asyncio.all_tasks()

    async with await connect(db_url, autocommit=False) as locker:
        # Another transaction holds the row: the first half waits on it until cancelled.
        await locker.execute(
            "SELECT 1 FROM performance_metrics WHERE platform_connection_id = %s "
            "AND entity_id = %s AND metric_type = %s AND date = %s FOR UPDATE",
            (connection_id, blocked.entity_id, blocked.metric_type, blocked.date),
        )
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            page_write = write_page(pool, connection_id, sync_id, with_bad_last_value(values))
            await asyncio.wait_for(page_write, timeout=20)  # TimeoutError if it waited
        left_behind = asyncio.all_tasks() - tasks  # tasks that existed before may finish
        assert not left_behind, f"a half's task outlived the page: {left_behind}"
        await assert_connections_back_and_sound(pool)
        assert await busy_backends(pool, besides=locker.info.backend_pid) == []
        await locker.rollback()

    rows = await stored(pool, connection_id)
    assert {k: r["value"] for k, r in rows.items()} == {key(old): Decimal("-1")}
    rerun = await write_page(pool, connection_id, sync_id, values)
    assert rerun == UpsertCounts(created=BIG - 1, updated=1, unchanged=0)
    assert len(await stored(pool, connection_id)) == BIG
