"""A worker killed mid-job: the job resumes on another worker in the same browser
session and no completed step runs again."""

from __future__ import annotations

import asyncio
import signal

from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack, start_worker_process
from tests.waiting import eventually
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job


async def test_killed_worker_resumes_same_session_without_repeating_steps(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        steel = stack.emulators.steel
        steel.faults.latency_s = 0.7  # each step takes a few round trips of this
        first = start_worker_process(stack.settings, address)
        try:
            request = await job_request(stack, SAFE_STEPS)
            handle = await start_job(stack, request)
            await eventually(
                lambda: stack.fetchrow(
                    "SELECT 1 AS done FROM job_steps WHERE job_id = %s AND step_index = 0 "
                    "AND status = 'completed'",
                    request.job_id,
                ),
                what="first step completed",
            )
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
        finally:
            if first.poll() is None:
                first.kill()
        steel.faults.latency_s = 0
        second = start_worker_process(stack.settings, address)
        try:
            result = await asyncio.wait_for(handle.result(), timeout=60)
        finally:
            second.terminate()
            await asyncio.to_thread(second.wait, 20)
        assert result.status == "completed"
        assert steel.created_count() == 1
        session_id = steel.sessions()[0]["id"]
        typed_urls = [
            a
            for a in steel.actions(session_id)
            if a.get("action") == "type_text" and a.get("text") == "https://notion.so/specs"
        ]
        assert len(typed_urls) == 1, "the completed first step ran again"
        assert steel.released_ids() == [session_id]
        assert second.returncode == 0, second.stderr.read() if second.stderr else ""
