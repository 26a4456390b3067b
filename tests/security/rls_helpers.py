"""Signing in as PostgREST does, a user with a row in every user-facing table, a database
with Supabase's default grants, and a digest of everything to prove nothing changed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from db.migrate import migrate
from tests.db.factories import insert_user, insert_workspace

# Supabase's own setup (before any migration): every table, sequence and function
# created in public is granted to the API roles.
SUPABASE_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END
$$
"""
SUPABASE_DEFAULT_GRANTS = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role
"""


async def migrate_as_supabase(url: str) -> None:
    """Migrate an empty database the way a Supabase project is: default grants first."""
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(SUPABASE_ROLES)
        await conn.execute(SUPABASE_DEFAULT_GRANTS)
    await migrate(url)


async def sign_in(conn: AsyncConnection[Any], role: str, user_id: uuid.UUID | None) -> None:
    """What PostgREST does at the start of each request's transaction."""
    await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    claims = {"role": role} | ({"sub": str(user_id)} if user_id else {})
    await conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


@asynccontextmanager
async def signed_in(
    db_url: str, role: str, user_id: uuid.UUID | None = None
) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection in a transaction signed in as ``role``/``user_id``; committed at the
    end of the block, rolled back if it raises."""
    async with (
        await AsyncConnection.connect(db_url, row_factory=dict_row) as conn,
        conn.transaction(),
    ):
        await sign_in(conn, role, user_id)
        yield conn


@dataclass
class Tenant:
    """A user with a row in every user-facing table, and those rows' ids."""

    user_id: uuid.UUID
    workspace_id: uuid.UUID
    browser_profile: str
    job_id: uuid.UUID
    approval_id: uuid.UUID
    generation_id: uuid.UUID  # pending
    finished_generation_id: uuid.UUID  # completed
    prompt_id: uuid.UUID
    asset_id: uuid.UUID
    memory_id: uuid.UUID
    connection_id: uuid.UUID


async def seed_tenant(conn: AsyncConnection[Any]) -> Tenant:
    """A user and their rows, written as the worker writes them (table owner)."""
    user_id = await insert_user(conn)
    workspace_id = await insert_workspace(conn, user_id)
    profile = f"steel-profile-{uuid.uuid4()}"
    ids = {k: uuid.uuid4() for k in ("job", "approval", "gen", "done", "prompt", "asset")}
    ids |= {"memory": uuid.uuid4(), "connection": uuid.uuid4(), "model": uuid.uuid4()}
    statements: list[tuple[str, tuple[Any, ...]]] = [
        (
            "UPDATE workspaces SET browser_settings = %s WHERE id = %s",
            (Jsonb({"profile_id": profile}), workspace_id),
        ),
        (
            "INSERT INTO jobs (id, user_id, workspace_id, title) VALUES (%s, %s, %s, 'j')",
            (ids["job"], user_id, workspace_id),
        ),
        (
            "INSERT INTO approvals (id, job_id, description) VALUES (%s, %s, 'delete')",
            (ids["approval"], ids["job"]),
        ),
        (
            "INSERT INTO job_steps (job_id, step_index, action) VALUES (%s, 0, '{}')",
            (ids["job"],),
        ),
        (
            "INSERT INTO memories (id, user_id, content) VALUES (%s, %s, 'likes tea')",
            (ids["memory"], user_id),
        ),
        (
            "INSERT INTO prompts (id, user_id, prompt_text) VALUES (%s, %s, 'p')",
            (ids["prompt"], user_id),
        ),
        (
            "INSERT INTO generations (id, user_id, prompt_text) VALUES (%s, %s, 'a cat')",
            (ids["gen"], user_id),
        ),
        (
            "INSERT INTO generations (id, user_id, prompt_text) VALUES (%s, %s, 'a dog')",
            (ids["done"], user_id),
        ),
        ("UPDATE generations SET status = 'submitting' WHERE id = %s", (ids["done"],)),
        ("UPDATE generations SET status = 'completed' WHERE id = %s", (ids["done"],)),
        (
            "INSERT INTO user_api_keys (user_id, service, encrypted_api_key) "
            "VALUES (%s, 'higgsfield', 'v1:x')",
            (user_id,),
        ),
        ("INSERT INTO ai_models (id, user_id, name) VALUES (%s, %s, 'm')", (ids["model"], user_id)),
        (
            "INSERT INTO assets (id, user_id, filename, file_path, file_type, mime_type, "
            "file_size) VALUES (%s, %s, 'a.png', %s, 'image', 'image/png', 1)",
            (ids["asset"], user_id, f"{user_id}/image/a.png"),
        ),
        (
            "INSERT INTO platform_connections (id, platform, account_id, created_by, "
            "credentials) VALUES (%s, 'meta', '1', %s, %s)",
            (ids["connection"], user_id, Jsonb({"ciphertext": "v1:x"})),
        ),
        (
            "INSERT INTO performance_metrics (platform_connection_id, platform, metric_type, "
            "value, date) VALUES (%s, 'meta', 'clicks', 1, '2025-01-01')",
            (ids["connection"],),
        ),
        (
            "INSERT INTO metric_sync_logs (platform_connection_id) VALUES (%s)",
            (ids["connection"],),
        ),
    ]
    for query, params in statements:
        await conn.execute(query, params)
    return Tenant(
        user_id=user_id,
        workspace_id=workspace_id,
        browser_profile=profile,
        job_id=ids["job"],
        approval_id=ids["approval"],
        generation_id=ids["gen"],
        finished_generation_id=ids["done"],
        prompt_id=ids["prompt"],
        asset_id=ids["asset"],
        memory_id=ids["memory"],
        connection_id=ids["connection"],
    )


async def seed_world(db_url: str) -> tuple[Tenant, Tenant]:
    """Two users with their rows, and rows of the back end's own tables."""
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        alice, bob = await seed_tenant(conn), await seed_tenant(conn)
        await conn.execute("INSERT INTO webhook_events (provider, event_id) VALUES ('r', 'e')")
        await conn.execute("INSERT INTO blobs (content_type, data) VALUES ('image/png', 'x')")
    return alice, bob


async def digest(db_url: str) -> dict[str, str]:
    """A digest of every row of every table in public and auth (as the owner sees them)."""
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        tables = await (
            await conn.execute(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname IN ('public', 'auth') ORDER BY 1, 2"
            )
        ).fetchall()
        found = {}
        for schema, table in tables:
            query = sql.SQL(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {}.{} t"
            ).format(sql.Identifier(schema), sql.Identifier(table))
            row = await (await conn.execute(query)).fetchone()
            assert row is not None
            found[f"{schema}.{table}"] = row[0]
    return found
