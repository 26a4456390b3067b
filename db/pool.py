"""The async connection pool every process uses."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import db.binary_arrays  # noqa: F401 - registers its dumpers before any connection opens
from db.queries import load_queries

# Connections of the pool return rows as dicts.
Pool = AsyncConnectionPool[AsyncConnection[dict[str, Any]]]


Q = load_queries("pool")

# Supavisor's transaction mode (Supabase's pooler) listens on 6543; its session mode and
# direct connections on 5432.
TRANSACTION_POOLER_PORT = 6543


def is_transaction_pooler(url: str) -> bool:
    """Whether ``url`` points at a transaction-mode pooler (by Supabase's port 6543)."""
    try:
        port = conninfo_to_dict(url).get("port")
    except psycopg.ProgrammingError:
        return False
    return str(port) == str(TRANSACTION_POOLER_PORT)


async def open_pool(
    url: str, *, min_size: int = 2, max_size: int = 20, transaction_pooler: bool | None = None
) -> Pool:
    """Open a pool on ``url`` and wait until its first connections are ready.

    Behind a transaction-mode pooler (``transaction_pooler``; None: detected by the port)
    consecutive transactions of one connection may reach different server sessions, so
    psycopg must not prepare statements (a prepared statement lives in one session). The
    worker and the ingress keep no other session state: transaction tags are
    ``set_config(..., true)`` inside their statement, locks are ``pg_advisory_xact_lock``.
    """
    if transaction_pooler is None:
        transaction_pooler = is_transaction_pooler(url)
    kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": True}
    if transaction_pooler:
        kwargs["prepare_threshold"] = None
    pool: Pool = AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[dict[str, Any]],
        min_size=min_size,
        max_size=max_size,
        open=False,
        # A lone statement commits by itself: one round trip, not BEGIN, it and COMMIT.
        # What must commit together runs in ``conn.transaction()``.
        kwargs=kwargs,
        # A connection broken by a Postgres restart is replaced, not handed out.
        check=check_if_server_spoke,
        name="orchestrator",
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def check_if_server_spoke(conn: AsyncConnection[Any]) -> None:
    """The pool's check on checkout, without a round trip for a quiet connection.

    An idle connection receives nothing unless the server ended it (a termination notice,
    then end of file, as on a restart or ``pg_terminate_backend``), so only a connection
    whose socket has something to read gets psycopg's own check, an empty query that
    raises if the connection is gone, and the pool then opens a new one. Checking every
    checkout cost a round trip per database call: ~4 % of the worker's CPU in the
    benchmark, and a network round trip per activity against a remote database. A
    connection that breaks between this check and its use fails that call, as it could
    after psycopg's check; activities retry it.
    """
    if conn.closed:
        raise ConnectionError("connection closed")
    quiet = select.poll()  # not select.select(): file descriptors above 1024 are fine
    quiet.register(conn.fileno(), select.POLLIN)
    if quiet.poll(0):
        await AsyncConnectionPool.check_connection(conn)


async def connect(
    url: str, *, autocommit: bool = True, prepare: bool = True
) -> AsyncConnection[dict[str, object]]:
    """A single connection (migrations, CLI one-offs); ``prepare=False``: never prepare."""
    conn = await AsyncConnection.connect(url, autocommit=autocommit, row_factory=dict_row)
    if not prepare:
        conn.prepare_threshold = None
    return conn


async def ping(pool: Pool) -> None:
    """Run one trivial statement on a pooled connection; raise if the database is down."""
    async with pool.connection() as conn:
        await conn.execute(Q["ping"])
