"""Higgsfield generations: rows and one function per state transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import NOW, Conn, RowNotFound, TransitionContext, transition

Q = load_queries("generations")
GenerationStatus = Literal[
    "pending", "submitting", "queued", "in_progress", "completed", "failed", "nsfw", "cancelled"
]
TERMINAL = ("completed", "failed", "nsfw", "cancelled")
_BEFORE = {
    "submitting": ["pending"],
    "queued": ["submitting"],
    "in_progress": ["submitting", "queued"],
    "completed": ["submitting", "queued", "in_progress"],
    "nsfw": ["submitting", "queued", "in_progress"],
    "failed": ["pending", "submitting", "queued", "in_progress"],
    "cancelled": ["pending", "submitting", "queued", "in_progress"],
}


class GenerationRow(BaseModel):
    """A row of ``generations``."""

    id: UUID
    user_id: UUID
    prompt_id: UUID | None
    prompt_text: str
    status: GenerationStatus
    higgsfield_job_id: str | None
    model: str
    settings: dict[str, Any]
    result_urls: list[str]
    saved_asset_ids: list[UUID]
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    submit_started_at: datetime | None
    temporal_workflow_id: str | None
    batch_id: UUID | None
    created_at: datetime


async def insert_generation(
    conn: Conn,
    *,
    generation_id: UUID,
    user_id: UUID,
    prompt_id: UUID | None,
    prompt_text: str,
    model: str,
    settings: dict[str, Any],
    workflow_id: str,
    batch_id: UUID | None,
) -> GenerationRow:
    """Create the generation (pending) if absent; return it either way."""
    await conn.execute(
        Q["insert_generation"],
        {
            "id": generation_id,
            "user_id": user_id,
            "prompt_id": prompt_id,
            "prompt_text": prompt_text,
            "model": model,
            "settings": Jsonb(settings),
            "temporal_workflow_id": workflow_id,
            "batch_id": batch_id,
        },
    )
    return await get_generation(conn, generation_id)


async def get_generation(conn: Conn, generation_id: UUID) -> GenerationRow:
    """The generation row; ``RowNotFound`` if absent."""
    row = await (await conn.execute(Q["get_generation"], {"id": generation_id})).fetchone()
    if row is None:
        raise RowNotFound("generations", generation_id)
    return GenerationRow.model_validate(row)


async def list_generations(
    conn: Conn, *, status: str | None = None, user_id: UUID | None = None, limit: int = 50
) -> list[GenerationRow]:
    """Most recent generations first."""
    rows = await (
        await conn.execute(
            Q["list_generations"], {"status": status, "user_id": user_id, "limit": limit}
        )
    ).fetchall()
    return [GenerationRow.model_validate(r) for r in rows]


async def take_slot(
    conn: Conn, generation_id: UUID, user_id: UUID, limit: int, ctx: TransitionContext
) -> GenerationRow | None:
    """pending → submitting if the user has fewer than ``limit`` active generations.

    The check and the transition happen under a per-user advisory lock, so two
    generations of one user never take the last slot together. None: no slot free.
    """
    async with conn.transaction():
        current = await get_generation(conn, generation_id)
        if current.status != "pending":
            return current  # a retry after the slot was taken
        await conn.execute(Q["lock_user_slots"], {"user_id": user_id})
        active = await (
            await conn.execute(Q["active_generations"], {"user_id": user_id})
        ).fetchone()
        if active is not None and int(active["active"]) >= limit:
            return None
        return await move(conn, generation_id, "submitting", ctx)


async def move(
    conn: Conn,
    generation_id: UUID,
    to: GenerationStatus,
    ctx: TransitionContext,
    *,
    values: dict[str, object] | None = None,
) -> GenerationRow:
    """Move a generation forward to ``to`` (idempotent; stamps completed_at at the end)."""
    extra = dict(values or {})
    if to in TERMINAL:
        extra.setdefault("completed_at", NOW)
    row = await transition(
        conn,
        table="generations",
        entity_id=generation_id,
        to_status=to,
        from_statuses=_BEFORE[to],
        ctx=ctx,
        values=extra,
    )
    return GenerationRow.model_validate(row)


async def record_submission(
    conn: Conn, generation_id: UUID, request_id: str, ctx: TransitionContext
) -> GenerationRow:
    """submitting → queued with Higgsfield's request id and the submit time."""
    return await move(
        conn,
        generation_id,
        "queued",
        ctx,
        values={"higgsfield_job_id": request_id, "started_at": NOW},
    )


async def claim_submission(conn: Conn, generation_id: UUID, *, within: float) -> datetime | None:
    """Claim the generation's one submit call; the claim's time, or None if it is taken.

    One statement, so two attempts can never both claim: the second waits on the row
    lock and then finds the marker set. Only a claimant may call Higgsfield. The claim
    gives up (``QueryCanceled``) after ``within`` seconds rather than claim late.
    """
    async with conn.transaction():
        await conn.execute(Q["bound_statement"], {"ms": str(max(int(within * 1000), 1))})
        row = await (await conn.execute(Q["claim_submission"], {"id": generation_id})).fetchone()
    return None if row is None else row["submit_started_at"]


async def release_submission(conn: Conn, generation_id: UUID, claimed_at: datetime) -> None:
    """Give the claim back: its call certainly did not reach Higgsfield."""
    await conn.execute(Q["release_submission"], {"id": generation_id, "claimed_at": claimed_at})


async def prompt_text(conn: Conn, prompt_id: UUID, user_id: UUID) -> str | None:
    """The text of a stored prompt of this user; None if it is not theirs (or absent)."""
    row = await (
        await conn.execute(Q["prompt_text"], {"id": prompt_id, "user_id": user_id})
    ).fetchone()
    return None if row is None else str(row["prompt_text"])


async def user_tier(conn: Conn, user_id: UUID) -> str | None:
    """The user's subscription tier; None if the user has no profile."""
    row = await (await conn.execute(Q["user_tier"], {"user_id": user_id})).fetchone()
    return None if row is None else str(row["subscription_tier"])


async def waiting_workflows(conn: Conn, user_id: UUID, freed_by: UUID, limit: int) -> list[str]:
    """Workflow ids of the user's oldest generations waiting for a slot (not ``freed_by``)."""
    rows = await (
        await conn.execute(
            Q["waiting_generations"],
            {"user_id": user_id, "generation_id": freed_by, "limit": limit},
        )
    ).fetchall()
    return [str(r["temporal_workflow_id"]) for r in rows]


async def note_error(conn: Conn, generation_id: UUID, message: str) -> None:
    """Say on the row why something asked of it could not happen; its status stays."""
    await conn.execute(Q["note_error"], {"msg": message, "id": generation_id})


async def insert_asset(
    conn: Conn,
    *,
    user_id: UUID,
    filename: str,
    file_path: str,
    mime_type: str,
    file_size: int,
    metadata: dict[str, Any],
) -> UUID:
    """Record a stored result file once (by its path); its asset id either way."""
    row = await (
        await conn.execute(
            Q["insert_asset"],
            {
                "user_id": user_id,
                "filename": filename,
                "file_path": file_path,
                "mime_type": mime_type,
                "file_size": file_size,
                "metadata": Jsonb(metadata),
            },
        )
    ).fetchone()
    if row is None:
        raise RowNotFound("assets", file_path)
    return UUID(str(row["id"]))


async def set_saved_assets(conn: Conn, generation_id: UUID, asset_ids: list[UUID]) -> None:
    """The generation's copies in asset storage."""
    await conn.execute(Q["set_saved_assets"], {"id": generation_id, "asset_ids": asset_ids})


async def user_api_key(conn: Conn, user_id: UUID, service: str) -> str | None:
    """The user's encrypted key for a service; None if they stored none."""
    row = await (
        await conn.execute(Q["user_api_key"], {"user_id": user_id, "service": service})
    ).fetchone()
    return None if row is None else str(row["encrypted_api_key"])


async def store_user_api_key(conn: Conn, user_id: UUID, service: str, encrypted: str) -> None:
    """Store (or replace) the user's encrypted key for a service."""
    await conn.execute(
        Q["upsert_user_api_key"],
        {"user_id": user_id, "service": service, "encrypted_api_key": encrypted},
    )
