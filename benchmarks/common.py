"""Helpers the scenarios share: seeding users, starting many workflows, waiting for
them, percentiles."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from psycopg import AsyncCursor
from temporalio.client import WorkflowHandle

T = TypeVar("T")
START_CONCURRENCY = 50  # start requests in flight at once
WAIT_TIMEOUT = 1800.0  # seconds: a run that takes longer is stuck
# Result long-polls in flight at once: 2,000 of them hit the dev server's "namespace
# concurrent poller limit" and load the server the benchmark measures.
RESULT_CONCURRENCY = 100


def stop_on_sigterm() -> None:
    """SIGTERM cancels the running task, so the stack it started is stopped and its
    directory deleted (SIGINT already does; a killed benchmark left Postgres running)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def failure_unless_cancelled() -> None:
    """Called from ``except Exception`` around a workflow's result: re-raise as a
    cancellation if this task is being cancelled (the client answers a cancelled wait
    with an error of its own, which would count as a failed workflow and swallow a
    SIGTERM)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def insert_users(
    cur: AsyncCursor[Any], users: Sequence[UUID], *, who: str, tier: str = "free"
) -> None:
    """Auth users with their profiles (``who-<id>@example.com``), in two statements."""
    emails = [(u, f"{who}-{u.hex[:12]}@example.com") for u in users]
    await cur.executemany("INSERT INTO auth.users (id, email) VALUES (%s, %s)", emails)
    await cur.executemany(
        "INSERT INTO public.profiles (id, full_name, email_address, subscription_tier) "
        "VALUES (%s, %s, %s, %s)",
        [(u, f"Bench {who}", email, tier) for u, email in emails],
    )


async def start_all(
    items: Sequence[T], start: Callable[[T], Awaitable[WorkflowHandle[Any, Any]]]
) -> list[WorkflowHandle[Any, Any]]:
    """Start one workflow per item, ``START_CONCURRENCY`` requests at a time, in order."""
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(item: T) -> WorkflowHandle[Any, Any]:
        async with gate:
            return await start(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def wait_all(
    handles: Sequence[WorkflowHandle[Any, Any]], check: Callable[[], None]
) -> tuple[int, float]:
    """Wait for every workflow's result; (how many failed, wall time when the last ended).

    ``check`` runs every second meanwhile and raises to stop waiting (a worker died).
    """
    failed = 0
    gate = asyncio.Semaphore(RESULT_CONCURRENCY)

    async def one(handle: WorkflowHandle[Any, Any]) -> None:
        nonlocal failed
        async with gate:
            try:
                await handle.result()
            except Exception:
                failure_unless_cancelled()
                failed += 1

    everything = asyncio.gather(*(one(h) for h in handles))
    deadline = time.monotonic() + WAIT_TIMEOUT
    while True:
        done, _ = await asyncio.wait([everything], timeout=1.0)
        if done:
            break
        try:
            check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"workflows still running after {WAIT_TIMEOUT:g} s")
        except BaseException:
            everything.cancel()
            raise
    return failed, time.time()


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def rate(count: int, seconds: float) -> float:
    """Per second, rounded to two places."""
    return round(count / seconds, 2) if seconds > 0 else 0.0


def ratio(ours: float, reference: float) -> float:
    """``ours / reference`` to three places; 0 without a reference."""
    return round(ours / reference, 3) if reference else 0.0
