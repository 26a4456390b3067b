"""The dispatcher: rows the app writes become workflows, promptly and durably.

Prompt: a dedicated connection LISTENs on ``orchestrator_dispatch``; the database's
triggers NOTIFY it, on commit, of each new row and each cancel request, and it acts on
the row at once. Durable: a sweep every ``DISPATCH_SWEEP_SECONDS`` (and whenever the
listening connection is (re)established) finds whatever no notification announced: rows
inserted while no worker ran, a notification lost with a dropped connection, a start that
failed because Temporal was down. Several dispatchers (one per worker) may run at once:
each row is acted on under its lock, and its workflow id is its own (``rows.py``).

LISTEN holds session state, so its connection must be a session connection (direct, or
Supavisor's session mode on port 5432): ``DISPATCH_DATABASE_URL``, which defaults to
``DATABASE_URL``. Transaction-mode poolers (Supavisor's port 6543, PgBouncer in
transaction mode) accept the LISTEN and never deliver a notification; the sweep still
picks everything up, only late.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID

import psycopg
from temporalio.client import Client

from db.dispatch import Entity, listen
from db.pool import Pool
from workers.dispatch.rows import RowDispatcher
from workers.logging import get_logger
from workers.settings import Settings
from workers.stopping import cancel_until_done

log = get_logger("workers.dispatch")
RECONNECT_MAX = 30.0


def parse_payload(payload: str) -> tuple[Entity, UUID] | None:
    """``jobs:<uuid>`` or ``generations:<uuid>``; None for anything else."""
    entity, _, raw = payload.partition(":")
    if entity not in ("jobs", "generations"):
        return None
    try:
        return entity, UUID(raw)  # type: ignore[return-value]
    except ValueError:
        return None


class Dispatcher:
    """Listens for rows and sweeps for the ones it did not hear of."""

    def __init__(
        self, rows: RowDispatcher, listen_url: str, sweep_every: float, concurrency: int
    ) -> None:
        self.rows = rows
        self.listen_url = listen_url
        self.sweep_every = sweep_every
        self.listening = asyncio.Event()
        self.swept = asyncio.Event()  # set after each sweep (tests wait on it)
        self.connections = 0  # listening sessions opened so far
        self._sweep_now = asyncio.Event()
        # Rows acted on at once: each holds one of the pool's connections while it calls
        # Temporal, so never more than the pool holds (more would wait on the pool).
        self.concurrency = max(1, min(concurrency, rows.pool.max_size))
        self._slots = asyncio.Semaphore(self.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Listen and sweep until cancelled (the loops end otherwise only by an error,
        which is raised here)."""
        loops = {asyncio.create_task(self._listen()), asyncio.create_task(self._sweep_forever())}
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            # The loops first: once they have ended no row is taken up, then the rows in hand.
            await cancel_until_done(loops)
            await cancel_until_done(self._tasks)
        for task in done:
            task.result()

    def sweep_soon(self) -> None:
        """Sweep now instead of at the next interval."""
        self._sweep_now.set()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.listen_url, autocommit=True
                ) as conn:
                    await listen(conn)
                    self.listening.set()
                    self.connections += 1
                    self.sweep_soon()  # whatever was inserted while nobody listened
                    delay = 0.5
                    async for notify in conn.notifies():
                        self._act(notify.payload)
            except psycopg.OperationalError as exc:
                log.warning("dispatcher lost its listening connection", error=str(exc))
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _act(self, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is None:
            log.warning("dispatcher ignored a notification", payload=payload[:100])
            return
        task = asyncio.create_task(self._handle(*parsed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, entity: Entity, row_id: UUID) -> None:
        async with self._slots:
            try:
                outcome = await self.rows.handle(entity, row_id)
            except Exception as exc:  # the sweep tries again; the loop must live on
                log.warning(
                    "dispatch failed; the sweep retries it",
                    entity=entity,
                    id=str(row_id),
                    error=f"{type(exc).__name__}: {exc}",
                )
                return
        log.debug("dispatched", entity=entity, id=str(row_id), outcome=outcome)

    async def _sweep_forever(self) -> None:
        while True:
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for returns the
            # awaited result and drops a cancel that arrives as it completes (a sweep asked
            # for just as the dispatcher is stopped), and the stop then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sweep_every):
                    await self._sweep_now.wait()
            self._sweep_now.clear()
            try:
                count = await self.rows.sweep()
            except Exception as exc:  # a database or Temporal outage: try at the next sweep
                log.warning("dispatch sweep failed", error=f"{type(exc).__name__}: {exc}")
            else:
                if count:
                    log.info("dispatch sweep", rows=count)
            self.swept.set()


@contextlib.asynccontextmanager
async def running_dispatcher(
    settings: Settings, pool: Pool, client: Client
) -> AsyncIterator[Dispatcher | None]:
    """Run the dispatcher beside the block (unless ``DISPATCHER_ENABLED`` is off); it is
    listening when the block starts."""
    if not settings.dispatcher_enabled:
        yield None
        return
    url = settings.dispatch_database_url or settings.database_url
    assert url is not None
    dispatcher = Dispatcher(
        RowDispatcher(pool, client, settings),
        url.get_secret_value(),
        settings.dispatch_sweep_seconds,
        settings.dispatch_concurrency,
    )
    task = asyncio.create_task(dispatcher.run())
    with contextlib.suppress(TimeoutError):  # a database that is down: the loop retries
        async with asyncio.timeout(10):
            await dispatcher.listening.wait()
    try:
        yield dispatcher
    finally:
        # One cancel: run() stops its own loops until they end; cancelling it again would
        # cut that short and leave them running.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
