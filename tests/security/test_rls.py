"""Row level security as Supabase applies it: each signed-in user sees and writes only their
own rows, anon sees nothing, and the back-end tables are invisible to both, with the
migrations' grants and with Supabase's default grants on the public schema. Which columns
of their own rows a user may write is tested in ``test_user_write_boundaries``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg import AsyncConnection, errors, sql

from tests.security.rls_helpers import migrate_as_supabase, seed_world, signed_in

# Each user-facing table and how a row names its owner.
OWNER = {
    "profiles": "id",
    "workspaces": "user_id",
    "jobs": "user_id",
    "approvals": "(SELECT user_id FROM public.jobs j WHERE j.id = job_id)",
    "job_steps": "(SELECT user_id FROM public.jobs j WHERE j.id = job_id)",
    "memories": "user_id",
    "generations": "user_id",
    "user_api_keys": "user_id",
    "ai_models": "user_id",
    "assets": "user_id",
    "prompts": "user_id",
    "platform_connections": "created_by",
    "performance_metrics": "(SELECT created_by FROM public.platform_connections c "
    "WHERE c.id = platform_connection_id)",
    "metric_sync_logs": "(SELECT created_by FROM public.platform_connections c "
    "WHERE c.id = platform_connection_id)",
    "browser_profiles": "user_id",
}
BACK_END = [
    "status_transitions",
    "webhook_events",
    "blobs",
    "status_machine",
    "orchestrator.schema_migrations",
]


def _row_for(table: str, owner: uuid.UUID) -> dict[str, Any]:
    """A row owned by ``owner``, as a client would try to insert it."""
    rows: dict[str, dict[str, Any]] = {
        "profiles": {"id": owner, "email_address": f"{owner}@example.com"},
        "workspaces": {"user_id": owner, "platform_name": "Notion"},
        "jobs": {"user_id": owner, "title": "x"},
        "memories": {"user_id": owner, "content": "x"},
        "generations": {"user_id": owner, "prompt_text": "x"},
        "user_api_keys": {"user_id": owner, "service": "wavespeed", "encrypted_api_key": "v1:x"},
        "ai_models": {"user_id": owner, "name": "x"},
        "assets": {"user_id": owner, "filename": "f", "file_path": f"/{uuid.uuid4()}"}
        | {"file_type": "image", "mime_type": "image/png", "file_size": 1},
        "prompts": {"user_id": owner, "prompt_text": "x"},
        "platform_connections": {"created_by": owner, "platform": "meta", "account_id": "1"},
    }
    return rows[table]


INSERTABLE = [
    "profiles",
    "workspaces",
    "jobs",
    "memories",
    "generations",
    "user_api_keys",
    "ai_models",
    "assets",
    "prompts",
    "platform_connections",
]


async def _visible(conn: AsyncConnection[Any], table: str) -> list[Any] | None:
    """The owners of the rows ``conn`` can see in ``table`` (None: no privilege at all)."""
    owner = OWNER.get(table, "NULL")
    try:
        name = table if "." in table else f"public.{table}"
        async with conn.transaction():  # a savepoint: a refusal ends only this statement
            cur = await conn.execute(f"SELECT {owner} AS owner FROM {name}")
            return [r["owner"] for r in await cur.fetchall()]
    except errors.InsufficientPrivilege:
        return None


async def _insert_for(conn: AsyncConnection[Any], table: str, owner: uuid.UUID) -> None:
    row = _row_for(table, owner)
    query = sql.SQL("INSERT INTO public.{} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )
    await conn.execute(query, list(row.values()))


async def _check_isolation(db_url: str, alice: uuid.UUID, bob: uuid.UUID) -> None:
    for me, other in ((alice, bob), (bob, alice)):
        async with signed_in(db_url, "authenticated", me) as conn:
            for table in OWNER:
                visible = await _visible(conn, table)
                assert visible and set(visible) == {me}, f"{table} as {me}"
            for table in BACK_END:
                assert await _visible(conn, table) in (None, []), table
            for table in INSERTABLE:
                with pytest.raises(errors.InsufficientPrivilege):
                    async with conn.transaction():
                        await _insert_for(conn, table, other)
            for table in ("workspaces", "memories", "prompts", "platform_connections"):
                column = OWNER[table]
                # Refused outright where the owner column is not the user's to write;
                # elsewhere row level security finds no row of the other user's.
                try:
                    async with conn.transaction():
                        cur = await conn.execute(
                            sql.SQL("UPDATE public.{} SET {} = %s WHERE {} = %s").format(
                                sql.Identifier(table),
                                sql.Identifier(column),
                                sql.Identifier(column),
                            ),
                            (me, other),
                        )
                        assert cur.rowcount == 0, f"{table}: took over the other user's row"
                except errors.InsufficientPrivilege:
                    pass
                cur = await conn.execute(
                    sql.SQL("DELETE FROM public.{} WHERE {} = %s").format(
                        sql.Identifier(table), sql.Identifier(column)
                    ),
                    (other,),
                )
                assert cur.rowcount == 0, f"{table}: deleted the other user's row"
    for role, user in (("anon", None), ("authenticated", None)):
        async with signed_in(db_url, role, user) as conn:
            for table in [*OWNER, *BACK_END]:
                assert await _visible(conn, table) in (None, []), f"{table} as {role}"


async def test_each_user_sees_and_writes_only_their_own_rows(db_url: str) -> None:
    alice, bob = await seed_world(db_url)
    await _check_isolation(db_url, alice.user_id, bob.user_id)


async def test_isolation_holds_with_supabase_default_grants(empty_db_url: str) -> None:
    """Supabase grants every table created in public to anon and authenticated: the
    migrations must take back what the app's users may not have."""
    await migrate_as_supabase(empty_db_url)
    alice, bob = await seed_world(empty_db_url)
    await _check_isolation(empty_db_url, alice.user_id, bob.user_id)


async def test_each_user_can_insert_their_own_rows(db_url: str) -> None:
    _, bob = await seed_world(db_url)
    async with signed_in(db_url, "authenticated", bob.user_id) as conn:
        for table in INSERTABLE:
            if table != "profiles":  # bob has his; a new profile is in the boundaries test
                await _insert_for(conn, table, bob.user_id)
