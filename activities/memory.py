"""Memory: recall from and store to Supermemory (scoped to the user), with a row in
``memories`` as the local backup. The workflow treats failures here as degradations."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from supermemory import AsyncSupermemory
from temporalio import activity

from db import memories
from db.pool import Pool

MAX_RECALLED = 5
MAX_MEMORY_CHARS = 500


class RecallInput(BaseModel):
    """Whose memories, about what."""

    user_id: UUID
    query: str


class RecallResult(BaseModel):
    """Short memories, most relevant first."""

    memories: list[str]


class StoreMemoryInput(BaseModel):
    """An outcome to remember, once per job."""

    user_id: UUID
    job_id: UUID
    content: str


class MemoryActivities:
    """Supermemory with the ``memories`` table as backup."""

    def __init__(self, pool: Pool, client: AsyncSupermemory) -> None:
        self.pool = pool
        self.client = client

    @activity.defn
    async def recall_memories(self, request: RecallInput) -> RecallResult:
        """The user's memories relevant to the query (bounded in count and size)."""
        response = await self.client.search(
            str(request.user_id), query=request.query[:1000], limit=MAX_RECALLED
        )
        texts = [(r.memory or r.chunk or "")[:MAX_MEMORY_CHARS] for r in response.results]
        return RecallResult(memories=[t for t in texts if t][:MAX_RECALLED])

    @activity.defn
    async def store_outcome_memory(self, request: StoreMemoryInput) -> None:
        """Store the job's outcome in Supermemory and in ``memories``, once each."""
        key = f"job-outcome-{request.job_id}"
        async with self.pool.connection() as conn:
            await memories.insert_memory(
                conn,
                user_id=request.user_id,
                content=request.content,
                metadata={"job_id": str(request.job_id), "kind": "job_outcome"},
                idempotency_key=key,
            )
        # A caller-defined document id: a retry updates the same document.
        await self.client.add(str(request.user_id), content=request.content, id=key)
