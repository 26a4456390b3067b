"""A row inserted while no worker runs (killed before it heard of the row) is started
once, by the next worker, without anyone touching it again; and the dispatcher in a
process of its own (`orchestrator dispatcher`) starts rows once, as a worker's does."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from temporalio.testing import WorkflowEnvironment

from tests.app.helpers import app_user, exists, insert_generation, insert_job, row, runs
from tests.harness import Stack, running_stack, start_worker_process
from tests.waiting import eventually
from workers.settings import settings_env

LISTENERS = (
    "SELECT count(*) AS n FROM pg_stat_activity "
    "WHERE datname = current_database() AND query ILIKE 'LISTEN %%orchestrator_dispatch%%'"
)


async def _listeners(stack: Stack) -> int:
    found = await stack.fetchrow(LISTENERS)
    assert found is not None
    return int(found["n"])


async def _stop(worker: subprocess.Popen[bytes], *, kill: bool) -> None:
    worker.kill() if kill else worker.terminate()
    await asyncio.to_thread(worker.wait, 30)


async def test_rows_inserted_while_the_worker_was_down_start_once_after_restart(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        user = await app_user(stack)
        first = start_worker_process(stack.settings, address)
        try:
            await eventually(lambda: _listeners(stack), timeout=60, what="a listening worker")
        finally:
            await _stop(first, kill=True)  # SIGKILL: no goodbye, no last sweep

        async def no_listener() -> bool:
            return await _listeners(stack) == 0

        await eventually(no_listener, what="the dead listener gone")
        generation_id = await insert_generation(stack, user)
        job_id = await insert_job(stack, user)
        assert not await exists(stack.client, f"generation-{generation_id}")
        assert not await exists(stack.client, f"job-{job_id}")

        second = start_worker_process(stack.settings, address)
        try:

            async def both_done() -> bool:
                generation = await row(stack, "generations", generation_id)
                job = await row(stack, "jobs", job_id)
                return generation["status"] == "completed" and job["status"] == "completed"

            await eventually(both_done, timeout=90, what="both rows completed")
        finally:
            await _stop(second, kill=False)
        assert await runs(stack.client, f"generation-{generation_id}") == 1
        assert await runs(stack.client, f"job-{job_id}") == 1
        assert stack.emulators.higgsfield.submission_count() == 1


def _start_dispatcher_process(stack: Stack, temporal_address: str) -> subprocess.Popen[bytes]:
    """`orchestrator dispatcher`, with DISPATCHER_ENABLED=false as the workers beside it
    have it (the setting is the workers'; this process is the dispatcher)."""
    env = settings_env(stack.settings) | {
        "TEMPORAL_ADDRESS": temporal_address,
        "LOG_LEVEL": "warning",
        "METRICS_BIND_ADDRESS": "",
        "DISPATCHER_ENABLED": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "dispatcher"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_the_dispatcher_in_its_own_process_starts_each_row_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # The worker (this test's, in-process) runs no dispatcher; `orchestrator dispatcher`
    # does: a row inserted before it started (its first sweep) and rows it hears of run
    # once each, and SIGTERM stops it cleanly.
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user = await app_user(stack)
        before = await insert_generation(stack, user, "before the dispatcher")
        dispatcher = _start_dispatcher_process(stack, address)
        try:
            await eventually(lambda: _listeners(stack), timeout=60, what="a listening dispatcher")
            heard = [await insert_generation(stack, user, f"heard {n}") for n in range(3)]
            job_id = await insert_job(stack, user)

            async def all_done() -> bool:
                found = [await row(stack, "generations", i) for i in [before, *heard]]
                job = await row(stack, "jobs", job_id)
                return all(r["status"] == "completed" for r in [*found, job])

            await eventually(all_done, timeout=90, what="every row completed")
        finally:
            dispatcher.terminate()
            await asyncio.to_thread(dispatcher.wait, 30)
        assert dispatcher.returncode == 0, dispatcher.stderr and dispatcher.stderr.read()[-2000:]
        for generation_id in [before, *heard]:
            assert await runs(stack.client, f"generation-{generation_id}") == 1
        assert await runs(stack.client, f"job-{job_id}") == 1
        assert stack.emulators.higgsfield.submission_count() == 4
