"""A terminated workflow cannot clean up: the sweep that ScheduleReconcile runs asks
Temporal about the workflows of rows still open and closes the rows of ended ones, once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.generations.helpers import start as start_generation
from tests.generations.helpers import user_with_key
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.metrics import SINCE, UNTIL, add_connection, connection_schedule, deleting_schedules
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workers.schedules import backfill_workflow_id
from workflows.metric_sync import MetricSync, ScheduleReconcile
from workflows.models.metric_sync import MetricSyncInput, ScheduleReconcileInput

STEPS = [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[1]]


async def _reconcile(stack: Stack, task_queue: str) -> Any:
    handle = await stack.client.start_workflow(
        ScheduleReconcile.run,
        ScheduleReconcileInput(task_queue=task_queue),
        id=f"reconcile-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await handle.result()
    return handle


async def _transitions(stack: Stack) -> int:
    row = await stack.fetchrow("SELECT count(*) AS n FROM status_transitions")
    assert row is not None
    return int(row["n"])


async def test_sweep_closes_rows_of_terminated_workflows_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        terminated_job = await job_request(stack, STEPS)
        job_handle = await start_job(stack, terminated_job)
        live_job = await job_request(stack, STEPS)
        live_handle = await start_job(stack, live_job)
        for job in (terminated_job, live_job):
            await approval_row(stack, job.job_id)  # each parked at its gate

        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        generation, generation_handle = await start_generation(
            stack, await user_with_key(stack), "held at Higgsfield"
        )
        await eventually(lambda: hf.submission_count() == 1, what="generation submitted")

        stack.emulators.meta.configure_account("5550003", campaigns=5)
        stack.emulators.meta.faults.latency_s = 2.0
        connection = await add_connection(stack, account_id="5550003")
        sync_handle = await stack.client.start_workflow(
            MetricSync.run,
            MetricSyncInput(connection_id=connection.id, window_start=SINCE, window_end=UNTIL),
            id=backfill_workflow_id(connection.id, SINCE, UNTIL),
            task_queue=task_queue,
        )
        await eventually(
            lambda: stack.fetchrow(
                "SELECT 1 AS open FROM metric_sync_logs WHERE temporal_workflow_id = %s",
                sync_handle.id,
            ),
            what="sync log opened",
        )
        for handle in (job_handle, generation_handle, sync_handle):
            await handle.terminate("stuck, says the operator")

        async with deleting_schedules(stack.client, connection_schedule(connection)):
            reconcile = await _reconcile(stack, task_queue)
            await record_history(reconcile, "schedule_reconcile_sweep")

            job = await stack.fetchrow(
                "SELECT status, error_message FROM jobs WHERE id = %s", terminated_job.job_id
            )
            assert job == {"status": "failed", "error_message": "terminated"}
            approval = await approval_row(stack, terminated_job.job_id)
            assert (approval["status"], approval["decision_note"]) == ("cancelled", "terminated")
            steps = await stack.fetchall(
                "SELECT status, error FROM job_steps WHERE job_id = %s ORDER BY step_index",
                terminated_job.job_id,
            )
            assert [(s["status"], s["error"]) for s in steps] == [
                ("completed", None),
                ("skipped", "terminated"),
                ("skipped", "terminated"),
            ]
            row = await stack.fetchrow(
                "SELECT status, error_message FROM generations WHERE id = %s",
                generation.generation_id,
            )
            assert row == {"status": "failed", "error_message": "terminated"}
            log = await stack.fetchrow(
                "SELECT status, error_message, end_time IS NOT NULL AS ended "
                "FROM metric_sync_logs WHERE temporal_workflow_id = %s",
                sync_handle.id,
            )
            assert log == {"status": "failed", "error_message": "terminated", "ended": True}
            reasons = await stack.fetchall(
                "SELECT DISTINCT reason FROM status_transitions WHERE entity_id = ANY(%s) "
                "AND to_status IN ('failed', 'cancelled')",
                [terminated_job.job_id, approval["id"], generation.generation_id],
            )
            assert [r["reason"] for r in reasons] == ["swept: terminated"]

            # The live job is untouched, and a second sweep changes nothing.
            live = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", live_job.job_id)
            assert live == {"status": "waiting_approval"}
            assert (await approval_row(stack, live_job.job_id))["status"] == "pending"
            before = await _transitions(stack)
            await _reconcile(stack, task_queue)
            assert await _transitions(stack) == before

        await live_handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await live_handle.result()
