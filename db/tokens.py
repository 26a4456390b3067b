"""Renewing credentials: refreshed tokens, credentials that failed for good, reconnections.

Connections (``platform_connections``) keep their secrets in the encrypted ``credentials``;
Threads accounts (seed 003's ``threads_accounts``) in the encrypted ``access_token``. A
refreshed token is stored only if the secret read before the refresh is still there
(compare-and-set), so a reconnect or a key rotation meanwhile is never undone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn, RowNotFound

Q = load_queries("tokens")
Holder = Literal["connection", "threads"]


class ThreadsAccountRow(BaseModel):
    """A row of ``threads_accounts`` (the token stays encrypted)."""

    id: UUID
    user_id: UUID | None
    threads_user_id: str | None
    username: str | None
    access_token: str | None
    token_expires_at: datetime | None
    is_active: bool | None
    created_at: datetime | None
    token_refreshed_at: datetime | None = None
    credentials_status: Literal["ok", "revoked"] = "ok"
    credentials_error: str | None = None

    @property
    def label(self) -> str:
        """How operators recognise the account: its Threads user id and handle."""
        handle = f" (@{self.username})" if self.username else ""
        return f"threads account {self.threads_user_id}{handle}"


class CredentialsState(BaseModel):
    """Whether a holder's credentials work, and whom to tell when they do not."""

    id: UUID
    platform: str
    account_id: str | None
    account_name: str | None
    credentials_status: Literal["ok", "revoked"]
    credentials_error: str | None
    credentials_failed_at: datetime | None
    credentials_notified_at: datetime | None
    owner_id: UUID | None
    owner_email: str | None

    @property
    def label(self) -> str:
        """The platform and account, as operators and owners recognise it."""
        name = f" ({self.account_name})" if self.account_name else ""
        return f"{self.platform} account {self.account_id}{name}"


_STATE = {"connection": "connection_credentials_state", "threads": "threads_credentials_state"}
_TABLE = {"connection": "platform_connections", "threads": "threads_accounts"}


async def store_connection_token(
    conn: Conn,
    connection_id: UUID,
    *,
    old_ciphertext: str,
    new_ciphertext: str,
    expires_at: datetime | None,
) -> bool:
    """Store a refreshed token; False if the credentials changed since they were read."""
    row = await (
        await conn.execute(
            Q["store_connection_token"],
            {
                "id": connection_id,
                "old": old_ciphertext,
                "credentials": Jsonb({"ciphertext": new_ciphertext}),
                "expires_at": expires_at,
            },
        )
    ).fetchone()
    return row is not None


async def store_threads_token(
    conn: Conn, account_id: UUID, *, old: str, new: str, expires_at: datetime
) -> bool:
    """Store a refreshed Threads token; False if the stored one changed since it was read."""
    row = await (
        await conn.execute(
            Q["store_threads_token"],
            {"id": account_id, "old": old, "access_token": new, "expires_at": expires_at},
        )
    ).fetchone()
    return row is not None


async def credentials_state(conn: Conn, holder: Holder, holder_id: UUID) -> CredentialsState:
    """The holder's credentials state and its owner's address; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q[_STATE[holder]], {"id": holder_id})).fetchone()
    if row is None:
        raise RowNotFound(_TABLE[holder], holder_id)
    return CredentialsState.model_validate(row)


async def mark_revoked(conn: Conn, holder: Holder, holder_id: UUID, error: str) -> CredentialsState:
    """ok → revoked with the reason; a holder already revoked keeps its first reason."""
    await conn.execute(_for(holder, "mark_revoked"), {"id": holder_id, "error": error[:1000]})
    return await credentials_state(conn, holder, holder_id)


async def mark_notified(conn: Conn, holder: Holder, holder_id: UUID, failed_at: datetime) -> None:
    """Record that the owner was told of the failure of ``failed_at``."""
    await conn.execute(_for(holder, "mark_notified"), {"id": holder_id, "failed_at": failed_at})


async def reconnect_connection(
    conn: Conn, connection_id: UUID, *, ciphertext: str, expires_at: datetime | None
) -> None:
    """New credentials for a connection: status ok, active; ``RowNotFound`` if absent."""
    row = await (
        await conn.execute(
            Q["reconnect_connection"],
            {
                "id": connection_id,
                "credentials": Jsonb({"ciphertext": ciphertext}),
                "expires_at": expires_at,
            },
        )
    ).fetchone()
    if row is None:
        raise RowNotFound("platform_connections", connection_id)


async def insert_threads_account(
    conn: Conn,
    *,
    account_id: UUID,
    user_id: UUID,
    threads_user_id: str,
    username: str,
    access_token: str,
    expires_at: datetime,
) -> ThreadsAccountRow:
    """Create the account if it does not exist; return it either way."""
    await conn.execute(
        Q["insert_threads_account"],
        {
            "id": account_id,
            "user_id": user_id,
            "threads_user_id": threads_user_id,
            "username": username,
            "access_token": access_token,
            "expires_at": expires_at,
        },
    )
    return await get_threads_account(conn, account_id)


async def get_threads_account(conn: Conn, account_id: UUID) -> ThreadsAccountRow:
    """The account row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_threads_account"], {"id": account_id})).fetchone()
    if row is None:
        raise RowNotFound("threads_accounts", account_id)
    return ThreadsAccountRow.model_validate(row)


async def list_threads_accounts(conn: Conn) -> list[ThreadsAccountRow]:
    """Every Threads account; none when the table does not exist."""
    exists = await (await conn.execute(Q["threads_accounts_present"])).fetchone()
    if not exists or not exists["present"]:
        return []
    rows = await (await conn.execute(Q["list_threads_accounts"])).fetchall()
    return [ThreadsAccountRow.model_validate(r) for r in rows]


async def reconnect_threads(
    conn: Conn, account_id: UUID, *, access_token: str, expires_at: datetime
) -> None:
    """A new token for an account: status ok, active; ``RowNotFound`` if absent."""
    params = {"id": account_id, "access_token": access_token, "expires_at": expires_at}
    row = await (await conn.execute(Q["reconnect_threads"], params)).fetchone()
    if row is None:
        raise RowNotFound("threads_accounts", account_id)


def _for(holder: Holder, query: str) -> sql.Composed:
    """A template of tokens.sql on the holder's table."""
    return sql.SQL(Q[query]).format(table=sql.Identifier("public", _TABLE[holder]))
