"""Which path a row takes through the dispatcher, and how many rows it acts on at once.

A new row with nothing else to it is locked and started in one transaction; every other
row (a cancel request, a batch, a row another dispatcher holds, one already started)
takes the full path, cancel first. Each case here acts on the row directly, with the
stack's own dispatcher deafened, so nothing but the call under test touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg
import pytest

from db.dispatch import Entity
from tests.app.helpers import (
    app_user,
    deafen,
    exists,
    insert_batch,
    insert_generation,
    insert_job,
    request_cancel,
    row,
    runs,
)
from tests.waiting import eventually
from workers.dispatch.loop import Dispatcher
from workers.dispatch.rows import Outcome, RowDispatcher

WORKFLOW = {"jobs": "job-{}", "generations": "generation-{}"}
HOLD: dict[str, Any] = {
    "jobs": "SELECT 1 FROM jobs WHERE id = %s FOR UPDATE",
    "generations": "SELECT 1 FROM generations WHERE id = %s FOR UPDATE",
}


async def _insert(stack: Any, user: Any, entity: Entity) -> uuid.UUID:
    if entity == "jobs":
        return await insert_job(stack, user)
    return await insert_generation(stack, user)


def _url(stack: Any) -> str:
    return str(stack.settings.database_url.get_secret_value())


@pytest.mark.parametrize("entity", ["jobs", "generations"])
async def test_a_row_another_transaction_holds_is_skipped_then_started_once(
    app_stack: Any, entity: Entity
) -> None:
    user = await app_user(app_stack)
    await deafen(app_stack)
    row_id = await _insert(app_stack, user, entity)
    rows = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    # Another dispatcher, mid-start, holds the row.
    async with (
        await psycopg.AsyncConnection.connect(_url(app_stack)) as other,
        other.transaction(),
    ):
        await other.execute(HOLD[entity], (row_id,))
        assert await rows.handle(entity, row_id) == "skipped"
        assert not await exists(app_stack.client, WORKFLOW[entity].format(row_id))
        assert (await row(app_stack, entity, row_id))["temporal_workflow_id"] is None
    assert await rows.handle(entity, row_id) == "started"
    assert await rows.handle(entity, row_id) == "skipped"  # no longer new: nothing again
    assert await runs(app_stack.client, WORKFLOW[entity].format(row_id)) == 1


@pytest.mark.parametrize("entity", ["jobs", "generations"])
async def test_a_new_row_with_a_cancel_request_is_cancelled_not_started(
    app_stack: Any, entity: Entity
) -> None:
    # The notification of the insert comes after the cancel was requested: the cancel
    # comes first, and nothing starts.
    user = await app_user(app_stack)
    await deafen(app_stack)
    row_id = await _insert(app_stack, user, entity)
    assert await request_cancel(app_stack, user, entity, row_id) == 1
    rows = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    assert await rows.handle(entity, row_id) == "cancelled"
    for _ in range(2):  # heard again (the sweep, another dispatcher): still nothing starts
        assert await rows.handle(entity, row_id) in ("nothing", "skipped")
    ended = await row(app_stack, entity, row_id)
    assert ended["status"] == "cancelled" and ended["cancel_delivered_at"] is not None
    assert not await exists(app_stack.client, WORKFLOW[entity].format(row_id))


async def test_a_batch_row_is_never_started_alone(app_stack: Any) -> None:
    # One row of a batch of three: heard on its own, it waits for its batch.
    user = await app_user(app_stack)
    await deafen(app_stack)
    batch_id, (generation_id,) = await insert_batch(app_stack, user, ["a cat"], size=3)
    rows = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    outcome: Outcome = await rows.handle("generations", generation_id)
    assert outcome == "waiting"
    assert not await exists(app_stack.client, f"generation-{generation_id}")
    assert not await exists(app_stack.client, f"generation-batch-{batch_id}")
    assert (await row(app_stack, "generations", generation_id))["temporal_workflow_id"] is None


async def test_a_row_that_is_gone_or_unknown_is_nothing(app_stack: Any) -> None:
    await deafen(app_stack)
    rows = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    assert await rows.handle("generations", uuid.uuid4()) == "nothing"
    assert await rows.handle("jobs", uuid.uuid4()) == "skipped"


class _Gate(RowDispatcher):
    """Holds every row it is handed until ``wanted`` are in hand at once; counts the
    most it ever held."""

    def __init__(self, stack: Any, wanted: int) -> None:
        super().__init__(stack.pool, stack.client, stack.settings)
        self.wanted, self.in_hand, self.most = wanted, 0, 0
        self.full = asyncio.Event()

    async def handle(self, entity: Entity, row_id: uuid.UUID) -> Outcome:
        self.in_hand += 1
        self.most = max(self.most, self.in_hand)
        if self.in_hand >= self.wanted:
            self.full.set()
        try:
            await self.full.wait()
            return await super().handle(entity, row_id)
        finally:
            self.in_hand -= 1


async def test_the_dispatcher_acts_on_its_concurrency_of_rows_at_once(app_stack: Any) -> None:
    # Eight slots: eight rows are in hand at once (four, before DISPATCH_CONCURRENCY, and
    # the ninth row waited for one of them), never more; each starts once.
    user = await app_user(app_stack)
    await deafen(app_stack)
    gate = _Gate(app_stack, wanted=8)
    dispatcher = Dispatcher(gate, _url(app_stack), sweep_every=3600, concurrency=8)
    task = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.wait_for(dispatcher.swept.wait(), timeout=30)
        ids = [await insert_generation(app_stack, user, f"at once {n}") for n in range(10)]
        await asyncio.wait_for(gate.full.wait(), timeout=60)

        async def all_started() -> bool:
            found = [await row(app_stack, "generations", i) for i in ids]
            return all(r["temporal_workflow_id"] for r in found)

        await eventually(all_started, timeout=60, what="every row started")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gate.most == 8
    for generation_id in ids:
        assert await runs(app_stack.client, f"generation-{generation_id}") == 1


async def test_a_dispatcher_stopped_as_it_is_told_to_sweep_stops(app_stack: Any) -> None:
    # A sweep asked for (a new listening connection asks for one) in the same moment the
    # dispatcher is stopped: on Python 3.11 asyncio.wait_for returned the sweep's wake-up
    # and dropped the cancel, the sweep loop ran on, and the stop (a worker's shutdown, the
    # test stack's teardown) waited forever. The stop must end it.
    await deafen(app_stack)
    rows = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    dispatcher = Dispatcher(rows, _url(app_stack), sweep_every=3600, concurrency=1)
    task = asyncio.create_task(dispatcher.run())
    async with asyncio.timeout(30):
        await dispatcher.swept.wait()  # its first sweep done: waiting for the next
    dispatcher.sweep_soon()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    if not done:  # it ran on: a second cancel (no sweep asked for) ends it before failing
        task.cancel()
        await asyncio.wait({task}, timeout=10)
    assert done and task.cancelled(), "the dispatcher ran on after it was stopped"


class _LosesACancel(RowDispatcher):
    """A sweep that loses the first cancel it is sent, as psycopg's pool can while it
    hands over a connection (Python 3.11's asyncio.wait_for), then finishes."""

    def __init__(self, stack: Any) -> None:
        super().__init__(stack.pool, stack.client, stack.settings)
        self.sweeping = asyncio.Event()

    async def sweep(self) -> int:
        self.sweeping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return 0


async def test_a_dispatcher_whose_sweep_lost_its_cancel_still_stops(app_stack: Any) -> None:
    # The sweep runs on after the stop's cancel; the dispatcher cancels again until its
    # loops have ended, instead of waiting for them forever.
    await deafen(app_stack)
    rows = _LosesACancel(app_stack)
    dispatcher = Dispatcher(rows, _url(app_stack), sweep_every=3600, concurrency=1)
    task = asyncio.create_task(dispatcher.run())
    async with asyncio.timeout(30):
        await rows.sweeping.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=15)
    for _ in range(3):  # it ran on: end it before failing (each cancel may meet the sleep)
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=5)
    assert done and task.cancelled(), "the dispatcher ran on after it was stopped"


@pytest.mark.parametrize(("asked", "slots"), [(1, 1), (8, 8), (10, 10), (64, 10), (0, 1)])
async def test_the_dispatcher_holds_no_more_rows_than_its_pool_has_connections(
    app_stack: Any, asked: int, slots: int
) -> None:
    # The test stack's pool holds 10 connections: each row in hand holds one.
    assert app_stack.pool.max_size == 10
    rows = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    assert Dispatcher(rows, _url(app_stack), 3600, concurrency=asked).concurrency == slots
