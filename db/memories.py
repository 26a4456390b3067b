"""Memories kept in ``memories``: the local backup of what Supermemory is told."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("memories")


async def insert_memory(
    conn: Conn, *, user_id: UUID, content: str, metadata: dict[str, Any], idempotency_key: str
) -> bool:
    """Keep a memory once per idempotency key; whether this call wrote it."""
    cur = await conn.execute(
        Q["insert_memory"],
        {
            "user_id": user_id,
            "content": content,
            "metadata": Jsonb(metadata),
            "idempotency_key": idempotency_key,
        },
    )
    return cur.rowcount == 1
