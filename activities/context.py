"""What activities need from the running activity: transition context, heartbeating."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from temporalio import activity

from db.transitions import TransitionContext


def transition_context(reason: str) -> TransitionContext:
    """The transition-log context of the current activity: its workflow run and a reason."""
    info = activity.info()
    return TransitionContext(
        reason=reason, workflow_id=info.workflow_id, run_id=info.workflow_run_id
    )


@contextlib.asynccontextmanager
async def heartbeating(
    beat: Callable[[], None] = activity.heartbeat, every: float = 2.0
) -> AsyncIterator[None]:
    """Call ``beat`` every ``every`` seconds while the block runs, so a dead worker is
    noticed within the heartbeat timeout and a cancellation reaches the activity. The first
    beat comes after ``every``: most activities end sooner and cost the server no heartbeat
    (each one is a write of the activity's state; the SDK sends the first at once)."""

    async def beating() -> None:
        while True:
            await asyncio.sleep(every)
            beat()

    task = asyncio.create_task(beating())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
