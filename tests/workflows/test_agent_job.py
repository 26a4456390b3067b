"""AgentJob end to end: real Temporal, real Postgres, Steel and Supermemory emulators."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.history_recording import record_history
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workflows.models.agent_job import AddStepsRequest
from workflows.models.approval import ApprovalDecisionInput
from workflows.models.steps import Step, StepResult


async def test_multi_step_job_completes_with_rows_recorded(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS)
        handle = await start_job(stack, request)
        result = await handle.result()
        assert result.status == "completed"
        assert [r.status for r in result.steps] == ["completed"] * 3
        await record_history(handle, "agent_job_completed")

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


async def test_add_steps_drives_a_job_step_by_step(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [], keep_open=True)
        handle = await start_job(stack, request)
        first = await handle.execute_update(
            "add_steps", AddStepsRequest(steps=SAFE_STEPS[:2]), result_type=list[StepResult]
        )
        assert [(r.step_index, r.status) for r in first] == [(0, "completed"), (1, "completed")]
        assert all(r.screenshot_blob_id for r in first)
        second = await handle.execute_update(
            "add_steps", AddStepsRequest(steps=SAFE_STEPS[2:]), result_type=list[StepResult]
        )
        assert [r.step_index for r in second] == [2]
        progress = await handle.query("progress")
        assert progress["steps_done"] == 3 and progress["status"] == "running"
        await handle.signal("finish")
        result = await handle.result()
        assert result.status == "completed" and len(result.steps) == 3
        await record_history(handle, "agent_job_add_steps")
        with pytest.raises(RPCError, match="already completed"):
            await handle.execute_update("add_steps", AddStepsRequest(steps=SAFE_STEPS[:1]))
        rows = await stack.fetchall(
            "SELECT step_index, status FROM job_steps WHERE job_id = %s ORDER BY step_index",
            request.job_id,
        )
        assert [r["status"] for r in rows] == ["completed"] * 3


async def test_cancelling_mid_step_releases_the_session(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.steel.faults.latency_s = 1.5
        request = await job_request(stack, SAFE_STEPS)
        handle = await start_job(stack, request)
        await eventually(
            lambda: stack.fetchrow(
                "SELECT 1 AS running FROM job_steps WHERE job_id = %s AND status = 'running'",
                request.job_id,
            ),
            what="a step running",
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        job = await stack.fetchrow(
            "SELECT status, steel_session_id FROM jobs WHERE id = %s", request.job_id
        )
        assert job is not None and job["status"] == "cancelled"
        assert stack.emulators.steel.released_ids() == [job["steel_session_id"]]
        await record_history(handle, "agent_job_cancelled")


async def test_transient_steel_errors_are_retried(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.steel.faults.fail_next(2, status=503, path_prefix="/v1/sessions")
        request = await job_request(stack, SAFE_STEPS[:2])
        result = await (await start_job(stack, request)).result()
        assert result.status == "completed"
        assert stack.emulators.steel.faults.injected_count() == 2
        assert stack.emulators.steel.created_count() == 1


async def test_permanent_steel_error_fails_the_job_clearly(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS[:2])
        steel = stack.emulators.steel
        handle = await start_job(stack, request)
        # Refuse the next computer action once the session exists.
        session = await eventually(lambda: steel.sessions(), what="session created")
        steel.faults.fail_next(
            1, status=422, path_prefix=f"/v1/sessions/{session[0]['id']}/computer"
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert "Steel refused step" in str(failure.value.cause)
        await record_history(handle, "agent_job_failed")
        job = await stack.fetchrow(
            "SELECT status, error_message FROM jobs WHERE id = %s", request.job_id
        )
        assert job is not None and job["status"] == "failed"
        assert "Steel refused step" in job["error_message"]
        failed = await stack.fetchrow(
            "SELECT status, error FROM job_steps WHERE job_id = %s AND status = 'failed'",
            request.job_id,
        )
        assert failed is not None and "422" in failed["error"]
        assert steel.released_ids() == [session[0]["id"]]


async def test_invalid_plans_are_rejected_before_anything_runs(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    with pytest.raises(ValidationError):
        Step.model_validate(
            {"action": {"action": "navigate", "url": "ftp://x"}, "description": "x"}
        )
    with pytest.raises(ValidationError):
        Step.model_validate({"action": {"action": "click_mouse"}, "description": "no point"})
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS)
        stranger = await job_request(stack, SAFE_STEPS)
        wrong = request.model_copy(update={"workspace_id": stranger.workspace_id})
        with pytest.raises(WorkflowFailureError) as failure:
            await (await start_job(stack, wrong)).result()
        assert "is not an active workspace of user" in str(failure.value.cause)
        assert await stack.fetchrow("SELECT id FROM jobs WHERE id = %s", request.job_id) is None
        assert stack.emulators.steel.created_count() == 0


async def test_supermemory_down_degrades_without_failing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.supermemory.faults.error_rate = 1.0
        request = await job_request(stack, SAFE_STEPS[:1])
        result = await (await start_job(stack, request)).result()
        assert result.status == "completed"
        backup = await stack.fetchrow(
            "SELECT content FROM memories WHERE user_id = %s", request.user_id
        )
        assert backup is not None and "completed" in backup["content"]
        assert stack.emulators.supermemory.documents() == []


async def test_expired_session_is_recreated(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[1]])
        handle = await start_job(stack, request)
        row = await approval_row(stack, request.job_id)
        steel = stack.emulators.steel
        first_session = steel.sessions()[0]["id"]
        steel.expire_session(first_session)
        await handle.execute_update(
            "decide_approval",
            ApprovalDecisionInput(approval_id=row["id"], decision="approve", decided_by="ops"),
        )
        result = await handle.result()
        assert result.status == "completed"
        assert steel.created_count() == 2
        await record_history(handle, "agent_job_session_recreated")
        job = await stack.fetchrow(
            "SELECT steel_session_id FROM jobs WHERE id = %s", request.job_id
        )
        assert job is not None and job["steel_session_id"] != first_session
        assert job["steel_session_id"] in steel.released_ids()
