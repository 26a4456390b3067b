"""A row inserted while no worker runs (killed before it heard of the row) is started
once, by the next worker, without anyone touching it again."""

from __future__ import annotations

import asyncio
import subprocess

from temporalio.testing import WorkflowEnvironment

from tests.app.helpers import app_user, exists, insert_generation, insert_job, row, runs
from tests.harness import Stack, running_stack, start_worker_process
from tests.waiting import eventually

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
