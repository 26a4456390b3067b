"""Every job row ends final: a browser release that keeps failing, a step whose worker shut
down mid-run, and steps added while the last one runs."""

from __future__ import annotations

from typing import Any

import psycopg
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.history_recording import record_history
from tests.waiting import eventually
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workers.worker import build_worker, open_services
from workflows.models.agent_job import AddStepsRequest
from workflows.models.steps import StepResult


async def test_job_completes_when_the_session_release_keeps_failing(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        steel = stack.emulators.steel
        steel.faults.latency_s = 0.3  # time to queue the release's failures before it runs
        request = await job_request(stack, SAFE_STEPS[:2])
        handle = await start_job(stack, request)
        session = (await eventually(steel.sessions, what="session created"))[0]["id"]
        steel.faults.fail_next(1000, status=503, path_prefix=f"/v1/sessions/{session}/release")
        steel.faults.latency_s = 0
        result = await handle.result()  # time skips over the release's retries
        await record_history(handle, "agent_job_release_failed")

        assert result.status == "completed"
        assert [s.status for s in result.steps] == ["completed", "completed"]
        assert steel.released_ids() == []
        assert len(result.warnings) == 1 and session in result.warnings[0]
        job = await stack.fetchrow("SELECT status, result FROM jobs WHERE id = %s", request.job_id)
        assert job is not None and job["status"] == "completed"
        assert job["result"]["warnings"] == result.warnings  # reported where operators look
        memory = await stack.fetchrow(
            "SELECT content FROM memories WHERE user_id = %s", request.user_id
        )
        assert memory is not None and "completed" in memory["content"]


async def test_step_cut_off_by_a_worker_shutdown_is_retried_and_recorded_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        steel = stack.emulators.steel
        request = await job_request(stack, [SAFE_STEPS[1]])  # one computer action
        async with open_services(stack.settings, stack.pool) as services:
            async with build_worker(stack.client, stack.settings, services):
                # The step's action outlasts the worker's shutdown grace (2 s): the
                # shutdown cancels it, and Temporal gives it to the next worker. Slow from
                # the start: set once the session existed, the step could finish before
                # the shutdown began (fresh-clone CI, 2026-12-04).
                steel.faults.latency_s = 6
                handle = await start_job(stack, request)
                await eventually(
                    lambda: stack.fetchrow(
                        "SELECT 1 AS running FROM job_steps WHERE job_id = %s "
                        "AND status = 'running'",
                        request.job_id,
                    ),
                    what="the step running",
                )
            steel.faults.latency_s = 0
            async with build_worker(stack.client, stack.settings, services):
                result = await handle.result()

        assert result.status == "completed"
        step = await stack.fetchrow(
            "SELECT status, error FROM job_steps WHERE job_id = %s", request.job_id
        )
        assert step == {"status": "completed", "error": None}
        history = await handle.fetch_history()
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        # Payloads are encrypted: tell the step's activity by its scheduled event's type.
        run_step_ids = {
            e.event_id
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "run_step"
        }
        completed_steps = [
            e
            for e in history.events
            if e.HasField("activity_task_completed_event_attributes")
            and e.activity_task_completed_event_attributes.scheduled_event_id in run_step_ids
        ]
        assert max(attempts) >= 2, "the step was not retried"
        assert len(completed_steps) == 1  # and the row says what the history says


async def test_steps_added_while_the_last_one_runs_are_run(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        steel = stack.emulators.steel
        request = await job_request(stack, [SAFE_STEPS[1]])  # no keep_open: ends after it
        # Slow from the start: set once the session existed, a step that had already run
        # left no running step to wait for (CI, 2026-12-04).
        steel.faults.latency_s = 2.0
        handle = await start_job(stack, request)
        await eventually(
            lambda: stack.fetchrow(
                "SELECT 1 AS running FROM job_steps WHERE job_id = %s AND status = 'running'",
                request.job_id,
            ),
            what="the last step running",
        )
        async with stack.pool.connection() as conn, conn.transaction():
            # Hold the new step's row: add_steps stays in its database write while the
            # last step finishes, the race a slow database makes.
            await conn.execute(
                "INSERT INTO job_steps (job_id, step_index, description, action) "
                "VALUES (%s, 1, 'held', '{}')",
                (request.job_id,),
            )
            update = await handle.start_update(
                "add_steps",
                AddStepsRequest(steps=[SAFE_STEPS[2]]),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=list[StepResult],
            )

            async def last_step_done() -> Any:
                return (await handle.query("progress"))["steps_done"] == 1

            await eventually(last_step_done, what="the last planned step done")
            raise psycopg.Rollback()  # the held row goes: add_steps writes its own
        steel.faults.latency_s = 0
        added = await update.result()
        result = await handle.result()
        await record_history(handle, "agent_job_steps_added_at_the_end")

        assert [(r.step_index, r.status) for r in added] == [(1, "completed")]
        assert [(s.step_index, s.status) for s in result.steps] == [
            (0, "completed"),
            (1, "completed"),
        ]
        rows = await stack.fetchall(
            "SELECT step_index, status, description FROM job_steps WHERE job_id = %s "
            "ORDER BY step_index",
            request.job_id,
        )
        assert [(r["step_index"], r["status"]) for r in rows] == [
            (0, "completed"),
            (1, "completed"),
        ]
        assert rows[1]["description"] == SAFE_STEPS[2].description
