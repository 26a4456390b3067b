"""An app user (role authenticated, signed in as PostgREST does, under RLS) can create
their own generation, as seed 003 allows, and its status change is still logged, as
theirs."""

from __future__ import annotations

from psycopg import AsyncConnection

from tests.db.factories import insert_user
from tests.security.rls_helpers import signed_in


async def test_user_creates_own_generation_under_rls(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True) as admin:
        user_id = await insert_user(admin)
    async with signed_in(db_url, "authenticated", user_id) as conn:
        row = await (
            await conn.execute(
                "INSERT INTO generations (user_id, prompt_text, status) "
                "VALUES (%s, 'mine', 'pending') RETURNING id",
                (user_id,),
            )
        ).fetchone()
        assert row is not None
    async with await AsyncConnection.connect(db_url) as admin:
        logged = await (
            await admin.execute(
                "SELECT to_status, reason, actor_role, actor_user_id FROM status_transitions "
                "WHERE entity_id = %s",
                (row["id"],),
            )
        ).fetchall()
    assert logged == [("pending", None, "authenticated", user_id)]
