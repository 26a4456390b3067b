"""The async connection pool every process uses."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import db.binary_arrays  # noqa: F401 - registers its dumpers before any connection opens

# Connections of the pool return rows as dicts.
Pool = AsyncConnectionPool[AsyncConnection[dict[str, Any]]]


async def open_pool(url: str, *, min_size: int = 2, max_size: int = 20) -> Pool:
    """Open a pool on ``url`` and wait until its first connections are ready."""
    pool: Pool = AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[dict[str, Any]],
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"row_factory": dict_row, "autocommit": False},
        # A connection broken by a Postgres restart is replaced, not handed out.
        check=AsyncConnectionPool.check_connection,
        name="orchestrator",
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def connect(url: str, *, autocommit: bool = True) -> AsyncConnection[dict[str, object]]:
    """A single connection (migrations, CLI one-offs)."""
    return await AsyncConnection.connect(url, autocommit=autocommit, row_factory=dict_row)
