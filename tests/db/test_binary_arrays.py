"""The hand-built binary arrays, read back by the real Postgres exactly as sent."""

from __future__ import annotations

import asyncio
import struct
import time
from datetime import date
from uuid import UUID

import pytest
from psycopg_pool import AsyncConnectionPool

from db.binary_arrays import date_array, int4_array, text_array, uuid7_array

TEXTS = [
    "",
    "cmp-1",
    "Kampagne Ü",
    "広告 キャンペーン",
    "emoji 🚀",
    "quote ' and \" and \\",
    "x" * 5000,
]
DATES = [
    date(1970, 1, 1),
    date(1999, 12, 31),
    date(2000, 1, 1),
    date(2025, 2, 28),
    date(9999, 12, 31),
]
INTS = [0, 1, -1, 2**31 - 1, -(2**31), 500]


async def test_each_array_reads_back_exactly(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT %(t)b::text[] AS t, %(d)b::date[] AS d, %(i)b::int[] AS i,"
                " %(none)b::text[] AS none, cardinality(%(t)b::text[]) AS n",
                {
                    "t": text_array(TEXTS),
                    "d": date_array(DATES),
                    "i": int4_array(INTS),
                    "none": text_array([]),
                },
            )
        ).fetchone()
    assert row is not None
    assert row["t"] == TEXTS and row["n"] == len(TEXTS)
    assert row["d"] == DATES
    assert row["i"] == INTS
    assert row["none"] == []


async def test_uuid7_ids_are_unique_time_ordered_version_7(pool: AsyncConnectionPool) -> None:
    before = time.time_ns() // 1_000_000
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT %(ids)b::uuid[] AS ids, uuid_extract_version((%(ids)b::uuid[])[1]) AS v,"
                " (extract(epoch FROM uuid_extract_timestamp((%(ids)b::uuid[])[1])) * 1000)::bigint"
                " AS ms",
                {"ids": uuid7_array(1000)},
            )
        ).fetchone()
    after = time.time_ns() // 1_000_000
    assert row is not None
    ids: list[UUID] = row["ids"]
    assert len(ids) == len(set(ids)) == 1000
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert row["v"] == 7 and before <= row["ms"] <= after
    await asyncio.sleep(0.002)
    later = uuid7_array(1)  # a later millisecond sorts after every earlier id
    assert UUID(bytes=later[-16:]) > max(ids)


def test_what_postgres_would_refuse_is_refused_here() -> None:
    with pytest.raises(ValueError, match="NUL"):
        text_array(["a\x00b"])
    with pytest.raises(struct.error):
        int4_array([2**31])
