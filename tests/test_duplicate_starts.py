"""A job's or generation's workflow id is used once: a second start is refused, also after
the first run closed, and the CLI says so in one line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.generations.helpers import start, user_with_key
from tests.harness import running_stack
from tests.test_cli import orchestrator
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workers.starters import DuplicateStart, start_generation


async def test_finished_generation_cannot_be_started_again(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle = await start(stack, await user_with_key(stack), "just once")
        assert (await handle.result()).status == "completed"
        with pytest.raises(DuplicateStart) as refused:
            await start_generation(stack.client, stack.settings, request)
        latest = await stack.client.get_workflow_handle(handle.id).describe()
        assert stack.emulators.higgsfield.submission_count() == 1
    assert str(refused.value) == (
        f"generation {request.generation_id} was already started (workflow {handle.id}); "
        "its id cannot be used again"
    )
    assert latest.run_id == handle.result_run_id  # no second run


async def test_running_generation_cannot_be_started_twice(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        request, handle = await start(stack, uuid.uuid4(), "never picked up")
        with pytest.raises(DuplicateStart):
            await start_generation(stack.client, stack.settings, request)
        await handle.terminate("test over")


async def test_cli_refuses_a_finished_job_in_one_line(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [SAFE_STEPS[0]])
        job_file = tmp_path / "job.json"
        job_file.write_text(request.model_dump_json())
        handle = await start_job(stack, request)
        assert (await handle.result()).status == "completed"
        again = await orchestrator(stack, "jobs", "start", "--file", str(job_file))
        latest = await stack.client.get_workflow_handle(handle.id).describe()
        steps = await stack.fetchall(
            "SELECT status FROM job_steps WHERE job_id = %s", request.job_id
        )
    assert again.returncode == 1
    assert again.stderr == (
        f"orchestrator: job {request.job_id} was already started (workflow job-"
        f"{request.job_id}); its id cannot be used again: give {job_file} a new job_id, "
        "or none\n"
    )
    assert again.stdout == ""
    assert latest.run_id == handle.result_run_id  # no second run
    assert [s["status"] for s in steps] == ["completed"]
