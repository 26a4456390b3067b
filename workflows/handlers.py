"""The last thing a run does: let its signal and update handlers return first."""

from __future__ import annotations

from temporalio import workflow


async def handlers_done() -> None:
    """Wait until every signal and update handler has returned, so none is cut off by the
    end of the run (an update's caller gets its answer instead of an error)."""
    if not workflow.all_handlers_finished():
        await workflow.wait_condition(workflow.all_handlers_finished)
