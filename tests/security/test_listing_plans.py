"""A signed-in user's own listing reads indexes, whatever the table's size: since 0027 the
owner's and the members' read policies are ORed, and the members' written
``org_id IN (SELECT member_org_ids())`` (a hashed subplan no index answers) turned every
listing into a scan of the whole table; 0034 writes it ``= ANY (ARRAY(...))``. The plan is
asserted, not a time."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from psycopg import AsyncConnection

from tests.db.factories import insert_user
from tests.security.rls_helpers import signed_in

USERS, ROWS = 50, 20_000

LISTINGS = {
    "jobs": "SELECT id FROM public.jobs ORDER BY created_at DESC LIMIT 50",
    "approvals": "SELECT id FROM public.approvals ORDER BY created_at DESC LIMIT 50",
    "generations": "SELECT id FROM public.generations ORDER BY created_at DESC LIMIT 50",
}


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


@pytest.fixture
async def crowded(db_url: str) -> uuid.UUID:
    """ROWS jobs (each with an approval) and generations over USERS users; one user."""
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        users = [await insert_user(conn) for _ in range(USERS)]
        await conn.execute(
            "INSERT INTO public.jobs (user_id, title) "
            "SELECT (%s::uuid[])[1 + i %% %s], 'listed' FROM generate_series(1, %s) AS i",
            (users, USERS, ROWS),
        )
        await conn.execute(
            "INSERT INTO public.approvals (job_id, description) "
            "SELECT id, 'listed' FROM public.jobs"
        )
        await conn.execute(
            "INSERT INTO public.generations (user_id, prompt_text, model) "
            "SELECT (%s::uuid[])[1 + i %% %s], 'listed', 'soul' "
            "FROM generate_series(1, %s) AS i",
            (users, USERS, ROWS),
        )
        for table in LISTINGS:
            await conn.execute(f"ANALYZE public.{table}")
    return users[0]


@pytest.mark.parametrize("table", sorted(LISTINGS))
async def test_a_users_listing_reads_indexes_not_the_whole_table(
    db_url: str, crowded: uuid.UUID, table: str
) -> None:
    async with signed_in(db_url, "authenticated", crowded) as conn:
        row = await (await conn.execute(f"EXPLAIN (FORMAT JSON) {LISTINGS[table]}")).fetchone()
        rows = await (await conn.execute(LISTINGS[table])).fetchall()
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    scans = _scans(plan)
    assert ("Seq Scan", table) not in scans, scans
    assert len(rows) == 50  # the user's own (ROWS / USERS of them), newest first
