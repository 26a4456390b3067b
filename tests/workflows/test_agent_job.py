"""AgentJob end to end: real Temporal, real Postgres, Steel and Supermemory emulators."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job


async def test_multi_step_job_completes_with_rows_recorded(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS)
        handle = await start_job(stack, request)
        result = await handle.result()
        assert result.status == "completed"
        assert [r.status for r in result.steps] == ["completed"] * 3

        job = await stack.fetchrow("SELECT * FROM jobs WHERE id = %s", request.job_id)
        assert job is not None
        assert job["status"] == "completed"
        assert job["temporal_workflow_id"] == f"job-{request.job_id}"
        assert job["steel_session_id"] and job["steel_session_viewer_url"]
        steps = await stack.fetchall(
            "SELECT step_index, status, started_at, finished_at, screenshot_ref FROM job_steps "
            "WHERE job_id = %s ORDER BY step_index",
            request.job_id,
        )
        assert [(s["step_index"], s["status"]) for s in steps] == [
            (0, "completed"),
            (1, "completed"),
            (2, "completed"),
        ]
        assert all(s["started_at"] and s["finished_at"] and s["screenshot_ref"] for s in steps)
        transitions = await stack.fetchall(
            "SELECT from_status, to_status FROM status_transitions WHERE entity_id = %s "
            "ORDER BY id",
            request.job_id,
        )
        assert [(t["from_status"], t["to_status"]) for t in transitions] == [
            (None, "pending"),
            ("pending", "running"),
            ("running", "completed"),
        ]
        steel = stack.emulators.steel
        assert steel.created_count() == 1
        assert steel.released_ids() == [job["steel_session_id"]]
        memory = await stack.fetchrow(
            "SELECT content FROM memories WHERE user_id = %s", request.user_id
        )
        assert memory is not None and "completed" in memory["content"]
        assert stack.emulators.supermemory.documents(str(request.user_id))
