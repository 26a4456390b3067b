"""An app user (role authenticated, under RLS) can create their own generation, as seed
003 allows, and its status change is still logged."""

from __future__ import annotations

from psycopg import AsyncConnection

from tests.db.factories import insert_user


async def test_user_creates_own_generation_under_rls(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True) as admin:
        user_id = await insert_user(admin)
        await admin.execute("GRANT authenticated TO CURRENT_USER")
    async with await AsyncConnection.connect(db_url) as conn:
        await conn.execute("SET ROLE authenticated")
        await conn.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (str(user_id),))
        row = await (
            await conn.execute(
                "INSERT INTO generations (user_id, prompt_text) VALUES (%s, 'mine') RETURNING id",
                (user_id,),
            )
        ).fetchone()
        assert row is not None
        await conn.commit()
    async with await AsyncConnection.connect(db_url) as admin:
        logged = await (
            await admin.execute(
                "SELECT to_status FROM status_transitions WHERE entity_id = %s", (row[0],)
            )
        ).fetchall()
    assert logged == [("pending",)]
