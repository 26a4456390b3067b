"""The sync's metric write path through Supavisor's transaction mode, as Supabase's
non-superuser ``postgres`` role: pipelined chunks, a page split over two connections, and
a batch in a savepoint of the caller's transaction, each landing on whatever server
session the pooler lends."""

from __future__ import annotations

import uuid

from db import metrics
from db.metrics import SPLIT_PAGE_VALUES, UPSERT_CHUNK, MetricValue, UpsertCounts
from db.pool import is_transaction_pooler, open_pool
from tests.metrics.test_metric_upsert import key, new_connection, page
from tests.supabase.test_supabase_migrations import pooled_url  # noqa: F401 - a fixture


async def test_metric_pages_are_written_through_a_transaction_pooler(
    pooled_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    assert is_transaction_pooler(pooled_url)
    pool = await open_pool(pooled_url, min_size=2, max_size=4)
    try:
        connection_id, sync_id = await new_connection(pool), uuid.uuid4()
        big = page(SPLIT_PAGE_VALUES * 2 + 40)  # two halves, several chunks each
        small = page(UPSERT_CHUNK + 20, campaign_offset=1000)  # one transaction, two chunks

        async def write(values: list[MetricValue]) -> UpsertCounts:
            return await metrics.upsert_metric_page(
                pool, connection_id=connection_id, platform="meta", sync_id=sync_id, values=values
            )

        # More writes than psycopg's prepare threshold: each would fail on a session that
        # never saw the statement if the pool prepared it.
        firsts = [await write(big), await write(small)]
        agains = [await write(big) for _ in range(3)] + [await write(small) for _ in range(3)]
        resent = [v.model_copy() for v in big]
        resent[0].value += 1
        resent[-1].value += 1
        changed = await write(resent)
        async with pool.connection() as conn, conn.transaction():
            in_callers = await metrics.upsert_metric_batch(
                conn,
                connection_id=connection_id,
                platform="meta",
                sync_id=sync_id,
                values=page(8, campaign_offset=2000),
            )
        async with pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT entity_id, metric_type, date, value FROM performance_metrics "
                    "WHERE platform_connection_id = %s",
                    (connection_id,),
                )
            ).fetchall()
    finally:
        await pool.close()

    assert firsts == [
        UpsertCounts(created=len(big)),
        UpsertCounts(created=len(small)),
    ]
    assert agains[:3] == [UpsertCounts(unchanged=len(big))] * 3
    assert agains[3:] == [UpsertCounts(unchanged=len(small))] * 3
    assert changed == UpsertCounts(updated=2, unchanged=len(big) - 2)
    assert in_callers == UpsertCounts(created=8)
    stored = {(r["entity_id"], r["metric_type"], r["date"]): r["value"] for r in rows}
    expected = {key(v): v.value for v in [*resent, *small, *page(8, campaign_offset=2000)]}
    assert stored == expected
