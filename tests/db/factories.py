"""Rows the tests need, inserted with plain SQL."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection


async def insert_user(conn: AsyncConnection[Any], email: str | None = None) -> uuid.UUID:
    """An auth user with its profile."""
    user_id = uuid.uuid4()
    email = email or f"user-{user_id.hex[:8]}@example.com"
    await conn.execute("INSERT INTO auth.users (id, email) VALUES (%s, %s)", (user_id, email))
    await conn.execute(
        "INSERT INTO public.profiles (id, full_name, email_address) VALUES (%s, %s, %s)",
        (user_id, "Test User", email),
    )
    return user_id


async def insert_workspace(
    conn: AsyncConnection[Any], user_id: uuid.UUID, platform: str = "Notion"
) -> uuid.UUID:
    """A workspace of ``user_id`` on ``platform``."""
    row = await (
        await conn.execute(
            "INSERT INTO public.workspaces (user_id, platform_name, agent_email) "
            "VALUES (%s, %s, 'agent@agency.localhost') RETURNING id",
            (user_id, platform),
        )
    ).fetchone()
    assert row is not None
    return row[0] if isinstance(row, tuple) else row["id"]  # type: ignore[no-any-return]
