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
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.approvals import ApprovalRow
from db.dispatch import Entity
from db.generations import GenerationRow
from db.jobs import JobRow
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


async def approval_for_approver(pool: Pool, approval_id: UUID, user_id: UUID) -> ApprovalRow | None:
    """The approval if this user is its approver (by their Supabase Auth address)."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(Q["approval_for_approver"], {"id": approval_id, "user_id": user_id})
        ).fetchone()
    return ApprovalRow.model_validate(row) if row else None


async def approval_votes(pool: Pool, approval_id: UUID) -> list[dict[str, Any]]:
    """The votes on an approval the caller may see (checked before)."""
    async with pool.connection() as conn:
        return list(await (await conn.execute(Q["approval_votes"], {"id": approval_id})).fetchall())


async def seat_email(pool: Pool, approval_id: UUID, user_id: UUID) -> str | None:
    """The address an approval asked this user at, if it asked them."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(Q["seat_of_user"], {"id": approval_id, "user_id": user_id})
        ).fetchone()
    return str(row["email"]) if row else None


async def user_email(pool: Pool, user_id: UUID) -> str | None:
    """The user's address as Supabase Auth knows it."""
    async with pool.connection() as conn:
        found = await (await conn.execute(Q["user_email"], {"user_id": user_id})).fetchone()
    return str(found["email"]) if found and found["email"] else None


async def run_statement(conn: Conn, statement: str) -> tuple[list[dict[str, Any]], int]:
    """Run an operator's statement as written (``orchestrator app sql``): the rows it
    returned (none for a statement without a result) and how many rows it touched."""
    cur = await conn.execute(statement)
    rows = await cur.fetchall() if cur.description is not None else []
    return rows, cur.rowcount


class UserJob(JobRow):
    """A job as its user sees it, with the app's cancel request."""

    cancel_requested_at: datetime | None


class UserGeneration(GenerationRow):
    """A generation as its user sees it, with the app's cancel request."""

    cancel_requested_at: datetime | None


class StepSummary(BaseModel):
    """What the API shows of a job's step."""

    step_index: int
    description: str
    risk: str
    status: str
    error: str | None


class IdempotencyKey(BaseModel):
    """A request key: the request it names and, once answered, the answer."""

    request_hash: str
    status_code: int | None
    response: Any
    expired: bool


async def insert_job(
    conn: Conn,
    *,
    job_id: UUID,
    user_id: UUID,
    workspace_id: UUID,
    title: str,
    instruction: str,
    plan: dict[str, Any],
    org_id: UUID | None = None,
) -> None:
    """The user's pending job with its plan (the dispatcher starts it); a replay inserts
    nothing."""
    await conn.execute(
        Q["insert_job"],
        {
            "id": job_id,
            "user_id": user_id,
            "workspace_id": workspace_id,
            "title": title,
            "instruction": instruction,
            "plan": Jsonb(plan),
            "org_id": org_id,
        },
    )


async def insert_generation(
    conn: Conn,
    *,
    generation_id: UUID,
    user_id: UUID,
    prompt_id: UUID | None,
    prompt_text: str,
    model: str,
    settings: dict[str, Any],
    batch_id: UUID | None,
    batch_size: int | None,
    org_id: UUID | None = None,
) -> None:
    """The user's pending generation (of a batch, or not); a replay inserts nothing."""
    await conn.execute(
        Q["insert_generation"],
        {
            "id": generation_id,
            "user_id": user_id,
            "prompt_id": prompt_id,
            "prompt_text": prompt_text,
            "model": model,
            "settings": Jsonb(settings),
            "batch_id": batch_id,
            "batch_size": batch_size,
            "org_id": org_id,
        },
    )


async def get_job(conn: Conn, job_id: UUID) -> UserJob | None:
    """A job the user may see; None if there is none."""
    row = await (await conn.execute(Q["get_job"], {"id": job_id})).fetchone()
    return UserJob.model_validate(row) if row else None


async def job_steps(conn: Conn, job_id: UUID) -> list[StepSummary]:
    """A job's steps in plan order."""
    rows = await (await conn.execute(Q["job_steps"], {"job_id": job_id})).fetchall()
    return [StepSummary.model_validate(r) for r in rows]


async def job_approvals(conn: Conn, job_id: UUID) -> list[ApprovalRow]:
    """A job's approval gates, oldest first."""
    rows = await (await conn.execute(Q["job_approvals"], {"job_id": job_id})).fetchall()
    return [ApprovalRow.model_validate(r) for r in rows]


async def get_generation(conn: Conn, generation_id: UUID) -> UserGeneration | None:
    """A generation the user may see; None if there is none."""
    row = await (await conn.execute(Q["get_generation"], {"id": generation_id})).fetchone()
    return UserGeneration.model_validate(row) if row else None


async def batch_generations(conn: Conn, batch_id: UUID) -> list[UserGeneration]:
    """A batch's generations the user may see, in prompt order."""
    rows = await (await conn.execute(Q["batch_generations"], {"batch_id": batch_id})).fetchall()
    return [UserGeneration.model_validate(r) for r in rows]


async def request_cancel(conn: Conn, entity: Entity, row_id: UUID) -> bool:
    """The app's cancel request on the user's own job or generation; whether it was
    theirs to ask (stamped by the database, once)."""
    query = Q["request_job_cancel"] if entity == "jobs" else Q["request_generation_cancel"]
    return (await conn.execute(query, {"id": row_id})).rowcount == 1


async def get_approval(conn: Conn, approval_id: UUID) -> ApprovalRow | None:
    """An approval of one of the user's jobs; None if there is none."""
    row = await (await conn.execute(Q["get_approval"], {"id": approval_id})).fetchone()
    return ApprovalRow.model_validate(row) if row else None


async def settled(conn: Conn, entity: Entity, row_id: UUID) -> bool:
    """Whether a dispatcher started (or refused) the row."""
    query = Q["job_settled"] if entity == "jobs" else Q["generation_settled"]
    return await (await conn.execute(query, {"id": row_id})).fetchone() is not None


async def claim_idempotency_key(conn: Conn, user_id: UUID, key: str, request_hash: str) -> bool:
    """Remember a key for this user; False if it is known already (then read it)."""
    row = await (
        await conn.execute(
            Q["claim_idempotency_key"],
            {"user_id": user_id, "key": key, "request_hash": request_hash},
        )
    ).fetchone()
    return row is not None


async def get_idempotency_key(conn: Conn, user_id: UUID, key: str) -> IdempotencyKey | None:
    """A key's request and answer; None if it is not known."""
    row = await (
        await conn.execute(Q["get_idempotency_key"], {"user_id": user_id, "key": key})
    ).fetchone()
    return IdempotencyKey.model_validate(row) if row else None


async def forget_idempotency_key(conn: Conn, user_id: UUID, key: str) -> None:
    """An expired key may be used again."""
    await conn.execute(Q["forget_idempotency_key"], {"user_id": user_id, "key": key})


async def store_idempotency_response(
    conn: Conn, user_id: UUID, key: str, status_code: int, response: Any
) -> None:
    """The first answer to a key, returned to every replay."""
    await conn.execute(
        Q["store_idempotency_response"],
        {"user_id": user_id, "key": key, "status_code": status_code, "response": Jsonb(response)},
    )


async def release_idempotency_key(conn: Conn, user_id: UUID, key: str) -> None:
    """Forget an unanswered key: its request was refused or failed."""
    await conn.execute(Q["release_idempotency_key"], {"user_id": user_id, "key": key})
