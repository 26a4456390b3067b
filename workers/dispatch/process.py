"""``orchestrator dispatcher``: the dispatcher in a process of its own.

By default every worker runs a dispatcher beside its task queues, on the same event loop
as the activities and workflow tasks it runs: when the workers are busy (a burst of
generations running to completion), each start waits behind them. A dispatcher in its
own process (its own container, or machine) only listens, sweeps and starts; the workers
then run with ``DISPATCHER_ENABLED=false``. Any number of dispatchers may run at once
(each row is acted on under its lock, ``rows.py``), so it may also run beside workers
that keep their own.
"""

from __future__ import annotations

import asyncio
import signal

from db.pool import open_pool
from workers.dispatch.loop import running_dispatcher
from workers.entry import run_process
from workers.logging import get_logger
from workers.settings import Settings
from workers.telemetry import client_plugins
from workers.temporal import connect_client

log = get_logger("workers.dispatch")


async def run_dispatcher(settings: Settings) -> None:
    """Listen, sweep and start until SIGTERM/SIGINT; the rows being acted on finish
    their transaction or roll back (the sweep acts on them again)."""
    settings.require("database_url")
    assert settings.database_url is not None
    database_url = settings.database_url.get_secret_value()
    # This process is the dispatcher: DISPATCHER_ENABLED (whether a worker runs one
    # beside its queues) does not turn it off.
    settings = settings.model_copy(update={"dispatcher_enabled": True})
    pool = await open_pool(
        database_url,
        min_size=settings.database_pool_min,
        max_size=max(settings.database_pool_max, settings.dispatch_concurrency),
        transaction_pooler=settings.database_transaction_pooler,
    )
    try:
        client = await connect_client(settings, plugins=client_plugins())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with running_dispatcher(settings, pool, client) as dispatcher:
            assert dispatcher is not None
            log.info(
                "dispatcher started",
                listening=dispatcher.listening.is_set(),
                concurrency=dispatcher.concurrency,
            )
            await stop.wait()
    finally:
        await pool.close()
    log.info("dispatcher stopped")


def main() -> None:
    """Entry point of ``orchestrator dispatcher``."""
    run_process(run_dispatcher)
