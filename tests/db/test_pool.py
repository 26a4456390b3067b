"""The pool's checkout check: a connection the server ended is never handed out, and a
quiet one is handed out without a round trip."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from db.pool import Pool, connect, open_pool
from tests.waiting import eventually


async def _pid(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
    assert row is not None
    return int(row["pid"])


async def _backend_pid(pool: Pool) -> int:
    async with pool.connection() as conn:
        return await _pid(conn)


async def test_connection_ended_by_the_server_is_replaced_on_checkout(db_url: str) -> None:
    pool = await open_pool(db_url, min_size=1, max_size=1)
    admin = await connect(db_url)
    try:
        async with pool.connection() as ended:
            first = await _pid(ended)

        # What a Postgres restart does to every idle connection, done to this one.
        await admin.execute("SELECT pg_terminate_backend(%s)", (first,))

        async def backend_gone() -> bool:
            cur = await admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,))
            return await cur.fetchone() is None

        await eventually(backend_gone, what="the backend to end")

        # The next checkout gets a working connection to a new backend, not an error.
        assert await _backend_pid(pool) != first
        assert ended.closed  # the ended connection was thrown away
    finally:
        await admin.close()
        await pool.close()


async def test_quiet_connection_is_handed_out_without_a_round_trip(db_url: str) -> None:
    pool = await open_pool(db_url, min_size=1, max_size=1)
    try:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        sent = 0
        execute = conn.execute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal sent
            sent += 1
            return await execute(*args, **kwargs)

        conn.execute = counted  # type: ignore[method-assign]
        async with pool.connection() as again:
            assert again is conn
        assert sent == 0  # psycopg's own check sends an empty query on every checkout
    finally:
        await pool.close()
