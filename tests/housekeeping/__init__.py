"""Housekeeping (issue 28): holders of renewing tokens, seed 002's tables for retention."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

from activities.metric_sync import credentials_context
from activities.token_refresh import threads_context
from db import metrics, tokens
from db.metrics import ConnectionRow, Platform
from db.tokens import ThreadsAccountRow
from tests.db.factories import insert_user
from tests.harness import Stack
from tests.supabase.seeds import HERE
from workers.keys import credential_box


async def add_owner(stack: Stack, email: str | None = None) -> uuid.UUID:
    """A user with a profile (the owner who is told when credentials stop working)."""
    async with stack.pool.connection() as conn:
        return await insert_user(conn, email)  # type: ignore[arg-type]


async def add_renewing_connection(
    stack: Stack,
    *,
    platform: Platform = "meta",
    account_id: str = "1234567",
    secret: dict[str, str],
    expires_at: datetime | None,
    owner: uuid.UUID | None = None,
    frequency: int = 60,
) -> ConnectionRow:
    """A connection whose secret (access or refresh token) is encrypted as the CLI stores it,
    with the stored token's expiry."""
    connection_id = uuid.uuid4()
    sealed = credential_box(stack.settings).encrypt(
        json.dumps(secret), credentials_context(connection_id)
    )
    async with stack.pool.connection() as conn:
        await metrics.insert_connection(
            conn,
            connection_id=connection_id,
            platform=platform,
            credentials={"ciphertext": sealed},
            account_id=account_id,
            account_name="Renewing account",
            sync_frequency=frequency,
            created_by=owner,
        )
        await tokens.reconnect_connection(
            conn, connection_id, ciphertext=sealed, expires_at=expires_at
        )
        return await metrics.get_connection(conn, connection_id)


async def add_threads_account(
    stack: Stack, owner: uuid.UUID, token: str, expires_at: datetime
) -> ThreadsAccountRow:
    """A Threads account with its token encrypted as the CLI stores it."""
    account_id = uuid.uuid4()
    sealed = credential_box(stack.settings).encrypt(token, threads_context(account_id))
    async with stack.pool.connection() as conn:
        return await tokens.insert_threads_account(
            conn,
            account_id=account_id,
            user_id=owner,
            threads_user_id=str(uuid.uuid4().int)[:17],
            username="studio",
            access_token=sealed,
            expires_at=expires_at,
        )


async def stored_connection_secret(stack: Stack, connection_id: uuid.UUID) -> dict[str, str]:
    """The decrypted secret of a connection (tests only)."""
    row = await stack.fetchrow(
        "SELECT credentials->>'ciphertext' AS c FROM platform_connections WHERE id = %s",
        connection_id,
    )
    assert row is not None
    box = credential_box(stack.settings)
    return dict(json.loads(box.decrypt(row["c"], credentials_context(connection_id))))


def seed_002_table(name: str) -> str:
    """One table of seed 002's housekeeping DDL (tests/supabase/seeds/), with its indexes."""
    text = (HERE / "seed_002_housekeeping.sql").read_text()
    table = re.search(rf"CREATE TABLE public\.{name} \(.*?\n\);\n", text, re.S)
    assert table, name
    indexes = re.findall(rf"CREATE INDEX \w+ ON public\.{name}\b[^;]*;", text)
    return table.group(0) + "\n".join(indexes)
