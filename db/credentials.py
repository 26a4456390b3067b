"""Stored credentials as ``orchestrator keys rotate`` reads and replaces them: a batch at
a time in primary-key order, each value replaced only if it is still the one read."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("credentials")
Table = Literal[
    "user_api_keys", "threads_accounts", "platform_connections", "notification_channels"
]
_BATCH = {
    "user_api_keys": "user_api_keys_batch",
    "threads_accounts": "threads_tokens_batch",
    "platform_connections": "connection_credentials_batch",
    "notification_channels": "notification_channel_secrets_batch",
}
_REPLACE = {
    "user_api_keys": "replace_user_api_key",
    "threads_accounts": "replace_threads_token",
    "platform_connections": "replace_connection_credentials",
    "notification_channels": "replace_notification_channel_secret",
}


class StoredCredential(BaseModel):
    """One encrypted value and what its encryption context is made of."""

    id: UUID
    ciphertext: str | None
    user_id: UUID | None = None  # user_api_keys
    service: str | None = None  # user_api_keys


async def credentials_batch(
    conn: Conn, table: Table, *, after: UUID | None, limit: int
) -> list[StoredCredential]:
    """The next ``limit`` stored values of ``table`` after id ``after`` (None: the first)."""
    rows = await (await conn.execute(Q[_BATCH[table]], {"after": after, "limit": limit})).fetchall()
    return [StoredCredential.model_validate(r) for r in rows]


async def replace_credential(conn: Conn, table: Table, row_id: UUID, old: str, new: str) -> bool:
    """Swap in ``new`` unless the stored value is no longer ``old``; whether it did."""
    cur = await conn.execute(Q[_REPLACE[table]], {"id": row_id, "old": old, "new": new})
    return cur.rowcount == 1
