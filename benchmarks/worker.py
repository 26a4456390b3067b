"""The bare baseline's worker process: ``python -m benchmarks.worker``.

It runs the baseline on its own task queue with the same tuning as ours (which the
benchmark runs as ``orchestrator worker``), configured from the environment. Its workflow
runner is the SDK's own sandbox, or ours (the compiled sandbox runner of
``workers/sdk_internals``, where the SDK patches apply) when ``BENCH_BARE_RUNNER=ours``:
the benchmark measures the baseline both ways.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta

from temporalio.worker import Worker

from benchmarks.bare import BARE_TASK_QUEUE, BareJob, bare_noop, bare_notify
from workers.cli.common import exit_without_teardown
from workers.logging import configure_logging
from workers.sdk_internals import sdk_patches
from workers.settings import Settings, load_settings
from workers.temporal import connect_client
from workers.worker import worker_tuner

RUNNER_ENV = "BENCH_BARE_RUNNER"


async def run_bare(settings: Settings) -> None:
    """The bare workflow and its no-op activities until SIGTERM/SIGINT."""
    client = await connect_client(settings)
    worker = Worker(
        client,
        task_queue=BARE_TASK_QUEUE,
        workflows=[BareJob],
        activities=[bare_noop, bare_notify],
        workflow_runner=sdk_patches(
            "auto" if os.environ.get(RUNNER_ENV) == "ours" else "off"
        ).workflow_runner(),
        tuner=worker_tuner(settings),
        max_cached_workflows=settings.worker_sticky_cache_size,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()


def main() -> None:
    """Entry point."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run_bare(settings))
    exit_without_teardown(0)


if __name__ == "__main__":
    main()
