"""The sync's write path on its own: counts, unchanged values left alone, the last value of
a key winning, a failed page writing nothing, and concurrent pages on the same keys."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from db import metrics
from db.metrics import UPSERT_CHUNK, MetricValue, UpsertCounts
from db.pool import Pool, connect
from tests.db.factories import insert_user

METRIC_TYPES = ("impressions", "clicks", "spend", "conversions")
FIRST_DAY = date(2025, 3, 1)


def page(count: int, *, bump: int = 0, campaign_offset: int = 0) -> list[MetricValue]:
    """``count`` distinct values (campaigns x 10 days x 4 metrics); ``bump`` adds to each."""
    values = []
    for i in range(count):
        row, metric = divmod(i, len(METRIC_TYPES))
        campaign, day = divmod(row, 10)
        campaign += campaign_offset
        values.append(
            MetricValue(
                entity_id=f"cmp-{campaign}",
                metric_type=METRIC_TYPES[metric],
                date=FIRST_DAY + timedelta(days=day),
                value=Decimal(i) + Decimal("0.5") + bump,
                source_detail={"platform": "meta", "campaign_name": f"Campaign {campaign}"},
            )
        )
    return values


async def new_connection(pool: Pool) -> uuid.UUID:
    connection_id = uuid.uuid4()
    async with pool.connection() as conn:
        await metrics.insert_connection(
            conn,
            connection_id=connection_id,
            platform="meta",
            credentials={},
            account_id="act_1",
            account_name=None,
            sync_frequency=60,
            created_by=None,
        )
    return connection_id


async def upsert(
    pool: Pool, connection_id: uuid.UUID, sync_id: uuid.UUID, values: list[MetricValue]
) -> UpsertCounts:
    async with pool.connection() as conn:
        return await metrics.upsert_metric_batch(
            conn, connection_id=connection_id, platform="meta", sync_id=sync_id, values=values
        )


async def stored(pool: Pool, connection_id: uuid.UUID) -> dict[tuple[str, str, date], Any]:
    """Every stored row of the connection by natural key."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT id, entity_id, metric_type, date, value, source_detail, sync_id, "
                "source, platform, updated_at FROM performance_metrics "
                "WHERE platform_connection_id = %s",
                (connection_id,),
            )
        ).fetchall()
    return {(r["entity_id"], r["metric_type"], r["date"]): r for r in rows}


def key(v: MetricValue) -> tuple[str, str, date]:
    return (v.entity_id, v.metric_type, v.date)


async def test_a_resent_page_changes_only_the_values_that_changed(pool: Pool) -> None:
    connection_id = await new_connection(pool)
    first_sync, second_sync = uuid.uuid4(), uuid.uuid4()
    values = page(UPSERT_CHUNK * 2 + 40)  # three statements
    first = await upsert(pool, connection_id, first_sync, values)
    before = await stored(pool, connection_id)

    resent = [v.model_copy() for v in values]
    resent[5].value += 1  # first chunk
    resent[UPSERT_CHUNK + 7].source_detail = {"platform": "meta", "campaign_name": "Renamed"}
    resent[-1].value -= 1  # last chunk
    changed = {key(resent[5]), key(resent[UPSERT_CHUNK + 7]), key(resent[-1])}
    again = await upsert(pool, connection_id, second_sync, resent)
    after = await stored(pool, connection_id)

    assert first == UpsertCounts(created=len(values), updated=0, unchanged=0)
    assert again == UpsertCounts(created=0, updated=3, unchanged=len(values) - 3)
    assert len(after) == len(values)
    for v in resent:
        row, old = after[key(v)], before[key(v)]
        assert (row["value"], row["source_detail"]) == (v.value, v.source_detail)
        assert (row["id"], row["source"], row["platform"]) == (old["id"], "api_sync", "meta")
        if key(v) in changed:
            assert row["sync_id"] == second_sync
            assert row["updated_at"] > old["updated_at"]
        else:
            assert row["sync_id"] == first_sync
            assert row["updated_at"] == old["updated_at"]


async def test_the_last_value_of_a_key_in_a_page_wins(pool: Pool) -> None:
    connection_id = await new_connection(pool)
    values = page(UPSERT_CHUNK + 100)
    target = values[3]
    # The same key again in a later chunk and at the very end, with other values and details.
    middle = target.model_copy(update={"value": Decimal("7"), "source_detail": {"v": 2}})
    last = target.model_copy(update={"value": Decimal("9"), "source_detail": {"v": 3}})
    counts = await upsert(
        pool,
        connection_id,
        uuid.uuid4(),
        [*values[: UPSERT_CHUNK + 50], middle, *values[UPSERT_CHUNK + 50 :], last],
    )

    rows = await stored(pool, connection_id)
    assert counts == UpsertCounts(created=len(values), updated=0, unchanged=0)
    assert len(rows) == len(values)
    assert (rows[key(target)]["value"], rows[key(target)]["source_detail"]) == (
        Decimal("9"),
        {"v": 3},
    )
    assert rows[key(values[4])]["value"] == values[4].value


async def test_new_rows_get_distinct_time_ordered_version_7_ids(pool: Pool) -> None:
    connection_id = await new_connection(pool)
    await upsert(pool, connection_id, uuid.uuid4(), page(500))
    await asyncio.sleep(0.002)
    later = page(4, campaign_offset=1000)
    await upsert(pool, connection_id, uuid.uuid4(), later)

    rows = await stored(pool, connection_id)
    ids = [r["id"] for r in rows.values()]
    assert len(set(ids)) == 504
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    first_ids = {rows[key(v)]["id"] for v in page(500)}
    assert min(rows[key(v)]["id"] for v in later) > max(first_ids)


async def test_values_are_stored_exactly_whatever_their_scale(pool: Pool) -> None:
    connection_id = await new_connection(pool)
    exact = ["12345678901234567890.123456789", "1E+3", "-0.000001", "0", "7.10", "-42"]
    values = [
        v.model_copy(update={"value": Decimal(x)}) for v, x in zip(page(6), exact, strict=True)
    ]
    await upsert(pool, connection_id, uuid.uuid4(), values)

    rows = await stored(pool, connection_id)
    assert [rows[key(v)]["value"] for v in values] == [Decimal(x) for x in exact]
    assert str(rows[key(values[4])]["value"]) == "7.10"  # the scale sent is kept


async def test_a_page_failing_midway_writes_nothing_and_keeps_the_callers_transaction(
    pool: Pool,
) -> None:
    connection_id = await new_connection(pool)
    kept = page(8, campaign_offset=100)
    bad = page(UPSERT_CHUNK + 20)
    # NaN is not JSON: Postgres refuses the second statement of the page.
    bad[UPSERT_CHUNK + 10].source_detail = {"score": float("nan")}
    async with pool.connection() as conn, conn.transaction():
        await metrics.upsert_metric_batch(
            conn, connection_id=connection_id, platform="meta", sync_id=uuid.uuid4(), values=kept
        )
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            await metrics.upsert_metric_batch(
                conn, connection_id=connection_id, platform="meta", sync_id=uuid.uuid4(), values=bad
            )
        # The caller's transaction goes on: it still sees its own page and can write more.
        assert len(await (await conn.execute("SELECT 1 FROM performance_metrics")).fetchall()) == 8
        after = await metrics.upsert_metric_batch(
            conn, connection_id=connection_id, platform="meta", sync_id=uuid.uuid4(), values=kept
        )

    assert after == UpsertCounts(created=0, updated=0, unchanged=8)
    assert set(await stored(pool, connection_id)) == {key(v) for v in kept}


async def test_a_page_on_an_autocommit_connection_is_all_or_nothing(
    pool: Pool, db_url: str
) -> None:
    connection_id = await new_connection(pool)
    bad = page(UPSERT_CHUNK + 20)
    bad[-1].source_detail = {"score": float("nan")}
    async with await connect(db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            await metrics.upsert_metric_batch(
                conn, connection_id=connection_id, platform="meta", sync_id=uuid.uuid4(), values=bad
            )
        counts = await metrics.upsert_metric_batch(
            conn,
            connection_id=connection_id,
            platform="meta",
            sync_id=uuid.uuid4(),
            values=bad[:-1],
        )

    assert counts == UpsertCounts(created=len(bad) - 1, updated=0, unchanged=0)
    assert len(await stored(pool, connection_id)) == len(bad) - 1


async def test_concurrent_pages_on_the_same_keys_create_each_row_once(pool: Pool) -> None:
    connection_id = await new_connection(pool)
    values = page(UPSERT_CHUNK * 3)
    later = page(UPSERT_CHUNK * 3, bump=1)

    results = await asyncio.gather(
        upsert(pool, connection_id, uuid.uuid4(), values),
        upsert(pool, connection_id, uuid.uuid4(), values),
        upsert(pool, connection_id, uuid.uuid4(), later),
    )

    rows = await stored(pool, connection_id)
    assert len(rows) == len(values)
    assert sum(r.created for r in results) == len(values)
    assert all(r.created + r.updated + r.unchanged == len(values) for r in results)
    assert {r["value"] for r in rows.values()} <= {v.value for v in values + later}


async def test_new_rows_are_in_their_connections_organization_and_keep_it(pool: Pool) -> None:
    """The upsert names the connection's organization itself (0027's trigger would): a new
    row takes the organization the connection is in when it is written, an updated row
    keeps its own, and a connection in no organization writes rows in none."""
    async with pool.connection() as conn:
        owner = await insert_user(conn)
        personal = (
            await (await conn.execute("SELECT public.personal_org(%s) AS org", (owner,))).fetchone()
        )["org"]
        team = (
            await (
                await conn.execute("INSERT INTO organizations (name) VALUES ('Team') RETURNING id")
            ).fetchone()
        )["id"]
    owned, orphan = uuid.uuid4(), await new_connection(pool)
    async with pool.connection() as conn:
        await metrics.insert_connection(
            conn,
            connection_id=owned,
            platform="meta",
            credentials={},
            account_id="act_2",
            account_name=None,
            sync_frequency=60,
            created_by=owner,
        )
    first = page(UPSERT_CHUNK + 30)
    await upsert(pool, owned, uuid.uuid4(), first)
    await upsert(pool, orphan, uuid.uuid4(), first)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE platform_connections SET org_id = %s WHERE id = %s", (team, owned)
        )
    # The same keys with new values, and new keys: only the new rows are in the team.
    later = page(UPSERT_CHUNK + 30, bump=1) + page(8, campaign_offset=500)
    counts = await upsert(pool, owned, uuid.uuid4(), later)

    assert counts == UpsertCounts(created=8, updated=len(first), unchanged=0)
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT platform_connection_id AS c, entity_id, org_id FROM performance_metrics "
                "WHERE platform_connection_id IN (%s, %s)",
                (owned, orphan),
            )
        ).fetchall()
    orgs = {(r["c"], r["entity_id"] == "cmp-500", r["org_id"]) for r in rows}
    assert orgs == {(owned, False, personal), (owned, True, team), (orphan, False, None)}
