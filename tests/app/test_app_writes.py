"""What the app may write for issue 26 (a plan, a batch, a cancel request) and nothing
more: each hostile write is tried as the signed-in user and as anon, on the migrations as
they are and on a Supabase project's default grants, and must fail and change nothing."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from tests.conftest import create_database
from tests.security.rls_helpers import digest, migrate_as_supabase, seed_world, signed_in

HOSTILE = [
    # (name, query, how it fails for the signed-in user)
    (
        "say the cancel was delivered",
        "UPDATE jobs SET cancel_delivered_at = now() WHERE id = %(job)s",
        "refused",
    ),
    (
        "cancel another user's job",
        "UPDATE jobs SET cancel_requested_at = now() WHERE id = %(other_job)s",
        "no_rows",
    ),
    (
        "cancel another user's generation",
        "UPDATE generations SET cancel_requested_at = now() WHERE id = %(other_generation)s",
        "no_rows",
    ),
    (
        "insert a job already cancelled",
        "INSERT INTO jobs (user_id, title, cancel_requested_at) VALUES (%(me)s, 'x', now())",
        "refused",
    ),
    (
        "insert a generation with a delivered cancel",
        "INSERT INTO generations (user_id, prompt_text, cancel_delivered_at) "
        "VALUES (%(me)s, 'x', now())",
        "refused",
    ),
    (
        "rewrite a job's plan",
        "UPDATE jobs SET plan = '{\"steps\": []}' WHERE id = %(job)s",
        "refused",
    ),
    (
        "move a generation into a batch",
        "UPDATE generations SET batch_id = gen_random_uuid(), batch_size = 1 "
        "WHERE id = %(generation)s",
        "refused",
    ),
    (
        "join another user's batch",
        "INSERT INTO generations (user_id, prompt_text, batch_id, batch_size) "
        "VALUES (%(me)s, 'x', %(other_batch)s, 2)",
        "refused",
    ),
    (
        "a batch of six",
        "INSERT INTO generations (user_id, prompt_text, batch_id, batch_size) "
        "VALUES (%(me)s, 'x', gen_random_uuid(), 6)",
        "refused",
    ),
    (
        "a batch size without a batch",
        "INSERT INTO generations (user_id, prompt_text, batch_size) VALUES (%(me)s, 'x', 1)",
        "refused",
    ),
    (
        "write an idempotency key",
        "INSERT INTO api_idempotency_keys (user_id, key, request_hash) VALUES (%(me)s, 'k', 'h')",
        "refused",
    ),
    ("read idempotency keys", "SELECT * FROM api_idempotency_keys", "refused"),
    (
        "decide in the app's name",
        "UPDATE approvals SET decision_channel = 'app' WHERE id = %(approval)s",
        "refused",
    ),
]


@pytest.fixture(scope="module", params=["migrations", "supabase"])
async def world(
    request: pytest.FixtureRequest, pg_admin_url: str, template_url: str
) -> tuple[str, dict[str, Any]]:
    """Two users' rows; the other user's pending generation is in a batch."""
    if request.param == "migrations":
        url = await create_database(pg_admin_url)
    else:
        url = await create_database(pg_admin_url, template=None)
        await migrate_as_supabase(url)
    other, me = await seed_world(url)
    other_batch = uuid.uuid4()
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE generations SET batch_id = %s, batch_size = 2 WHERE id = %s",
            (other_batch, other.generation_id),
        )
    params = {
        "me": me.user_id,
        "job": me.job_id,
        "generation": me.generation_id,
        "approval": me.approval_id,
        "other_job": other.job_id,
        "other_generation": other.generation_id,
        "other_batch": other_batch,
    }
    return url, params


async def _try(url: str, role: str, user: uuid.UUID | None, query: str, params: Any) -> str:
    try:
        async with signed_in(url, role, user) as conn:
            cur = await conn.execute(query, params)
            return "no_rows" if cur.rowcount == 0 else "wrote"
    except psycopg.Error as exc:
        assert exc.sqlstate in ("42501", "23514"), f"{exc.sqlstate} {exc}"
        return "refused"


@pytest.mark.parametrize(("name", "query", "fails_by"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_signed_in_user_cannot(
    world: tuple[str, dict[str, Any]], name: str, query: str, fails_by: str
) -> None:
    url, params = world
    before = await digest(url)
    assert await _try(url, "authenticated", params["me"], query, params) == fails_by, name
    assert await _try(url, "anon", None, query, params) == "refused", name
    assert await digest(url) == before


async def test_a_cancel_request_is_stamped_by_the_database_once(
    world: tuple[str, dict[str, Any]],
) -> None:
    url, params = world
    async with signed_in(url, "authenticated", params["me"]) as conn:
        first = await (
            await conn.execute(
                "UPDATE jobs SET cancel_requested_at = '2000-01-01' WHERE id = %s "
                "RETURNING cancel_requested_at, now() AS now",
                (params["job"],),
            )
        ).fetchone()
    assert first is not None and first["cancel_requested_at"] == first["now"]
    for later in ("NULL", "'2099-01-01'", "now()"):
        async with signed_in(url, "authenticated", params["me"]) as conn:
            again = await (
                await conn.execute(
                    f"UPDATE jobs SET cancel_requested_at = {later} WHERE id = %s "
                    "RETURNING cancel_requested_at",
                    (params["job"],),
                )
            ).fetchone()
        assert again == {"cancel_requested_at": first["cancel_requested_at"]}, later
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobs SET cancel_requested_at = NULL WHERE id = %s", (params["job"],)
        )


async def test_what_the_app_does_works(world: tuple[str, dict[str, Any]]) -> None:
    url, params = world
    me = params["me"]
    batch = uuid.uuid4()
    async with signed_in(url, "authenticated", me) as conn:
        job = await (
            await conn.execute(
                "INSERT INTO jobs (user_id, title, plan) VALUES (%s, 't', '{\"steps\": []}') "
                "RETURNING id",
                (me,),
            )
        ).fetchone()
        for _ in range(2):
            await conn.execute(
                "INSERT INTO generations (user_id, prompt_text, batch_id, batch_size) "
                "VALUES (%s, 'v', %s, 2)",
                (me, batch),
            )
        assert job is not None
        cancelled = await conn.execute(
            "UPDATE generations SET cancel_requested_at = now() WHERE batch_id = %s", (batch,)
        )
        assert cancelled.rowcount == 2
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("DELETE FROM jobs WHERE id = %s", (job["id"],))
        await conn.execute("DELETE FROM generations WHERE batch_id = %s", (batch,))
