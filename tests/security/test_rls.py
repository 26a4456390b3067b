"""Row level security as Supabase applies it: each signed-in user sees and writes only their
own rows, anon sees nothing, and the back-end tables are invisible to both, with the
migrations' grants and with Supabase's default grants on the public schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from psycopg import AsyncConnection, errors, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.db.factories import insert_user, insert_workspace

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


async def _seed_user(conn: AsyncConnection[Any]) -> uuid.UUID:
    """A user with one row in every user-facing table (as the service role writes them)."""
    user_id = await insert_user(conn)
    workspace_id = await insert_workspace(conn, user_id)
    job_id, connection_id, model_id, asset_id = (uuid.uuid4() for _ in range(4))
    statements: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO jobs (id, user_id, workspace_id, title) VALUES (%s, %s, %s, 'j')",
            (job_id, user_id, workspace_id),
        ),
        ("INSERT INTO approvals (job_id, description) VALUES (%s, 'delete')", (job_id,)),
        (
            "INSERT INTO job_steps (job_id, step_index, action) VALUES (%s, 0, '{}')",
            (job_id,),
        ),
        ("INSERT INTO memories (user_id, content) VALUES (%s, 'likes tea')", (user_id,)),
        ("INSERT INTO generations (user_id, prompt_text) VALUES (%s, 'a cat')", (user_id,)),
        (
            "INSERT INTO user_api_keys (user_id, service, encrypted_api_key) "
            "VALUES (%s, 'higgsfield', 'v1:x')",
            (user_id,),
        ),
        ("INSERT INTO ai_models (id, user_id, name) VALUES (%s, %s, 'm')", (model_id, user_id)),
        (
            "INSERT INTO assets (id, user_id, filename, file_path, file_type, mime_type, "
            "file_size) VALUES (%s, %s, 'a.png', %s, 'image', 'image/png', 1)",
            (asset_id, user_id, f"/{asset_id}.png"),
        ),
        ("INSERT INTO prompts (user_id, prompt_text) VALUES (%s, 'p')", (user_id,)),
        (
            "INSERT INTO platform_connections (id, platform, account_id, created_by, "
            "credentials) VALUES (%s, 'meta', '1', %s, %s)",
            (connection_id, user_id, Jsonb({"ciphertext": "v1:x"})),
        ),
        (
            "INSERT INTO performance_metrics (platform_connection_id, platform, metric_type, "
            "value, date) VALUES (%s, 'meta', 'clicks', 1, '2025-01-01')",
            (connection_id,),
        ),
        ("INSERT INTO metric_sync_logs (platform_connection_id) VALUES (%s)", (connection_id,)),
    ]
    for query, params in statements:
        await conn.execute(query, params)
    return user_id


@asynccontextmanager
async def _as(db_url: str, role: str, user_id: uuid.UUID | None = None) -> AsyncIterator[Any]:
    """A connection acting as ``role`` (with ``user_id`` as the JWT subject)."""
    async with await AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        await c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if user_id is not None:
            await c.execute(
                "SELECT set_config('request.jwt.claim.sub', %s, false)", (str(user_id),)
            )
        yield c


async def _visible(conn: AsyncConnection[Any], table: str) -> list[Any] | None:
    """The owners of the rows ``conn`` can see in ``table`` (None: no privilege at all)."""
    owner = OWNER.get(table, "NULL")
    try:
        name = table if "." in table else f"public.{table}"
        cur = await conn.execute(f"SELECT {owner} AS owner FROM {name}")
    except errors.InsufficientPrivilege:
        return None
    return [r["owner"] for r in await cur.fetchall()]


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
        async with _as(db_url, "authenticated", me) as conn:
            for table in OWNER:
                assert await _visible(conn, table) == [me], f"{table} as {me}"
            for table in BACK_END:
                assert await _visible(conn, table) in (None, []), table
            for table in INSERTABLE:
                with pytest.raises(errors.InsufficientPrivilege):
                    await _insert_for(conn, table, other)
            for table in ("workspaces", "memories", "prompts", "platform_connections"):
                column = OWNER[table]
                cur = await conn.execute(
                    sql.SQL("UPDATE public.{} SET {} = %s WHERE {} = %s").format(
                        sql.Identifier(table), sql.Identifier(column), sql.Identifier(column)
                    ),
                    (me, other),
                )
                assert cur.rowcount == 0, f"{table}: took over the other user's row"
                cur = await conn.execute(
                    sql.SQL("DELETE FROM public.{} WHERE {} = %s").format(
                        sql.Identifier(table), sql.Identifier(column)
                    ),
                    (other,),
                )
                assert cur.rowcount == 0, f"{table}: deleted the other user's row"
    for role, user in (("anon", None), ("authenticated", None)):
        async with _as(db_url, role, user) as conn:
            for table in [*OWNER, *BACK_END]:
                assert await _visible(conn, table) in (None, []), f"{table} as {role}"


async def _seeded(db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        alice, bob = await _seed_user(conn), await _seed_user(conn)
        await conn.execute("INSERT INTO webhook_events (provider, event_id) VALUES ('r', 'e')")
        await conn.execute("INSERT INTO blobs (content_type, data) VALUES ('image/png', 'x')")
    return alice, bob


async def test_each_user_sees_and_writes_only_their_own_rows(db_url: str) -> None:
    alice, bob = await _seeded(db_url)
    await _check_isolation(db_url, alice, bob)


async def test_isolation_holds_with_supabase_default_grants(db_url: str) -> None:
    """Supabase grants every public table to anon and authenticated: RLS alone decides."""
    alice, bob = await _seeded(db_url)
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated;"
            "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated"
        )
    await _check_isolation(db_url, alice, bob)
