"""Waking generations that wait for one of their user's concurrency slots.

A waiting generation checks for a free slot at growing intervals (its history stays small
over a long wait); a generation that frees its slot wakes the user's oldest waiters with
a signal, so the next one starts at once instead of at its next check.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from db.pool import Pool
from db.queries import load_queries
from workflows.models.generation import SLOT_FREED

Q = load_queries("generation_slots")
WAKE_AT_MOST = 3  # one slot freed: a few waiters race for it under the slot lock


class WakeWaitersInput(BaseModel):
    """The generation that freed a slot, and its user."""

    generation_id: UUID
    user_id: UUID


class SlotActivities:
    """Signals waiting generations."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def wake_slot_waiters(self, request: WakeWaitersInput) -> int:
        """Signal the user's oldest waiting generations that a slot is free; how many."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    Q["waiting_generations"],
                    {
                        "user_id": request.user_id,
                        "generation_id": request.generation_id,
                        "limit": WAKE_AT_MOST,
                    },
                )
            ).fetchall()
        client = activity.client()
        woken = 0
        for row in rows:
            try:
                await client.get_workflow_handle(row["temporal_workflow_id"]).signal(SLOT_FREED)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # ended without closing its row: the sweep closes it
            woken += 1
        return woken
