"""What the HTTP API reads and writes for a signed-in user.

Reads and writes of the user's own rows run as that user would through PostgREST: the
transaction switches to the ``authenticated`` role with the token's claims, so row level
security and the column grants decide, exactly as for the app's own queries. A row the
user may not see is simply not found. The few reads that must look past row level
security (whether the user is an approval's approver) and the idempotency keys run as
the worker, which must be a member of ``authenticated`` (Supabase's ``postgres`` is).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from db.pool import Pool
from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("app_api")


@contextlib.asynccontextmanager
async def as_user(pool: Pool, claims: dict[str, Any]) -> AsyncIterator[Conn]:
    """A connection in a transaction signed in as the token's user (committed at the end
    of the block, rolled back if it raises)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(Q["act_as_user"])
        await conn.execute(Q["set_claims"], {"claims": json.dumps(claims)})
        yield conn  # SET LOCAL: the role and claims end with the transaction


async def one(conn: Conn, query: str, **params: Any) -> dict[str, Any] | None:
    """The first row of a named query."""
    return await (await conn.execute(Q[query], params)).fetchone()


async def all_rows(conn: Conn, query: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a named query."""
    return await (await conn.execute(Q[query], params)).fetchall()


async def run(conn: Conn, query: str, **params: Any) -> int:
    """Run a named statement; rows it changed."""
    return (await conn.execute(Q[query], params)).rowcount


async def approval_for_approver(pool: Pool, approval_id: UUID, user_id: UUID) -> Any:
    """The approval if this user is its approver (by their Supabase Auth address)."""
    async with pool.connection() as conn:
        return await one(conn, "approval_for_approver", id=approval_id, user_id=user_id)


async def user_email(pool: Pool, user_id: UUID) -> str | None:
    """The user's address as Supabase Auth knows it."""
    async with pool.connection() as conn:
        found = await one(conn, "user_email", user_id=user_id)
    return str(found["email"]) if found and found["email"] else None


async def run_statement(conn: Conn, statement: str) -> tuple[list[dict[str, Any]], int]:
    """Run an operator's statement as written (``orchestrator app sql``): the rows it
    returned (none for a statement without a result) and how many rows it touched."""
    cur = await conn.execute(statement)
    rows = await cur.fetchall() if cur.description is not None else []
    return rows, cur.rowcount
