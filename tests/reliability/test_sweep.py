"""A terminated workflow cannot clean up: the sweep that ScheduleReconcile runs asks
Temporal about the workflows of rows still open and closes the rows of ended ones, once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.housekeeping_schedules import retention_schedule_id
from activities.sweep import ended_reason
from db.sweep import OpenRow, close_row
from db.transitions import TransitionContext
from tests.db.factories import insert_user, insert_workspace
from tests.generations.helpers import start as start_generation
from tests.generations.helpers import user_with_key
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.metrics import (
    add_connection,
    backfill,
    connection_schedule,
    deleting_schedules,
    sync_log_opened,
)
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workflows.metric_sync import ScheduleReconcile
from workflows.models.metric_sync import ScheduleReconcileInput

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
        sync_handle = await backfill(stack, connection)
        await sync_log_opened(stack, sync_handle.id)
        for handle in (job_handle, generation_handle, sync_handle):
            await handle.terminate("stuck, says the operator")

        retention = retention_schedule_id(task_queue)  # the reconcile keeps housekeeping too
        async with deleting_schedules(stack.client, connection_schedule(connection), retention):
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


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (None, None),
        (WorkflowExecutionStatus.RUNNING, None),
        (WorkflowExecutionStatus.TERMINATED, "terminated"),
        (WorkflowExecutionStatus.TIMED_OUT, "timed out"),
        (WorkflowExecutionStatus.COMPLETED, "workflow completed without closing it"),
        (WorkflowExecutionStatus.FAILED, "workflow failed without closing it"),
        (WorkflowExecutionStatus.CANCELED, "workflow canceled without closing it"),
        (WorkflowExecutionStatus.CONTINUED_AS_NEW, "workflow continued_as_new without closing it"),
    ],
)
def test_only_an_ended_workflow_gives_a_reason_to_close(
    status: WorkflowExecutionStatus | None, reason: str | None
) -> None:
    assert ended_reason(status) == reason


async def test_closing_a_row_its_workflow_already_closed_changes_nothing(
    pool: AsyncConnectionPool,
) -> None:
    ctx = TransitionContext(reason="swept: terminated")
    async with pool.connection() as conn:
        user_id = await insert_user(conn)
        workspace_id = await insert_workspace(conn, user_id)
        job_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO jobs (id, user_id, workspace_id, temporal_workflow_id) "
            "VALUES (%s, %s, %s, %s)",
            (job_id, user_id, workspace_id, f"job-{job_id}"),
        )
        for status in ("running", "completed"):
            await conn.execute("UPDATE jobs SET status = %s WHERE id = %s", (status, job_id))
        await conn.execute(
            "INSERT INTO job_steps (job_id, step_index, action, status) "
            "VALUES (%s, 0, '{}', 'completed')",
            (job_id,),
        )
        rows = [
            OpenRow(entity="jobs", id=job_id, workflow_id=f"job-{job_id}"),
            OpenRow(entity="job_steps", id=job_id, workflow_id=f"job-{job_id}"),
            OpenRow(entity="approvals", id=uuid.uuid4(), workflow_id=f"job-{job_id}"),
        ]
        before = await (await conn.execute("SELECT count(*) FROM status_transitions")).fetchone()
        for row in rows:  # the approval: deleted meanwhile
            assert await close_row(conn, row, "terminated", ctx) is False
        job = await (await conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))).fetchone()
        after = await (await conn.execute("SELECT count(*) FROM status_transitions")).fetchone()
    assert job is not None and (job["status"], job["error_message"]) == ("completed", None)
    assert before == after
