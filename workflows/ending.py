"""How a run ends cleanly: its end written despite a late cancel, calls that ran out of
their deadline recognised and failed calls put in words, and its handlers let finish
before it completes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, RetryState
from temporalio.exceptions import TimeoutError as CallTimedOut

T = TypeVar("T")


async def despite_cancel(ending: Awaitable[T]) -> T:
    """Await ``ending`` (the writes that make a run's rows final) to its end even if a
    cancel arrives meanwhile: the late cancel is noted, not obeyed."""
    task = asyncio.ensure_future(ending)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise  # the ending itself was cancelled (eviction): nothing to wait for
            workflow.logger.info("cancel requested while the run was ending; ending first")


def out_of_time(failure: ActivityError) -> bool:
    """The call ran out of the time its schedule-to-close bound gave it, retries included
    (timed out, or a next attempt would have started past it)."""
    return isinstance(failure.cause, CallTimedOut) or failure.retry_state == RetryState.TIMEOUT


def failure_reason(failure: ActivityError | ChildWorkflowError) -> str:
    """What a failed call says went wrong: the message of the application error it raised,
    else its cause (a timeout, a cancel) or itself."""
    cause = failure.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or failure)


def error_type(failure: ActivityError) -> str | None:
    """The type of the application error a failed call raised (None: it raised none)."""
    cause = failure.cause
    return cause.type if isinstance(cause, ApplicationError) else None


@contextmanager
def failing_in_words() -> Iterator[None]:
    """A run that fails because a call failed shows why in its details (the UI's first
    view), then fails as it would have."""
    try:
        yield
    except (ActivityError, ChildWorkflowError) as failure:
        workflow.set_current_details(f"**Failed:** {failure_reason(failure)}")
        raise


async def handlers_done() -> None:
    """Wait until every signal and update handler has returned, so none is cut off by the
    end of the run (an update's caller gets its answer instead of an error). Call it after
    the run's body, not in a ``finally``: an evicted run is closed outside its event loop."""
    if not workflow.all_handlers_finished():
        await workflow.wait_condition(workflow.all_handlers_finished)
