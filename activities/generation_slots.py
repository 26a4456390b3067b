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

from db import generations
from db.pool import Pool
from workflows.models.generation import SLOT_FREED

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
            waiting = await generations.waiting_workflows(
                conn, request.user_id, request.generation_id, WAKE_AT_MOST
            )
        client = activity.client()
        woken = 0
        for workflow_id in waiting:
            try:
                await client.get_workflow_handle(workflow_id).signal(SLOT_FREED)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # ended without closing its row: the sweep closes it
            woken += 1
        return woken
