"""Stopping a background task for good.

A task is stopped by cancelling it, and one cancel can be lost: on Python 3.11
``asyncio.wait_for`` returns a result that arrived together with the cancel (psycopg's
pool waits for a free connection with it), so a loop that was handed a connection as it
was stopped runs on, and whoever waits for it waits forever. ``cancel_until_done``
cancels again until the tasks have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_until_done(tasks: Iterable[asyncio.Task[Any]], *, every: float = 1.0) -> None:
    """Cancel the tasks and wait for them, cancelling again each still running ``every``
    seconds later. A cancel of the caller meanwhile is raised as usual."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
