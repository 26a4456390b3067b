"""A sync always closes its log: cancelled ("failed", reason "cancelled"), or past its own
deadline, which ends it before the schedule's execution timeout would kill it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from activities.metric_schedules import SYNC_EXECUTION_TIMEOUT, backfill_workflow_id
from tests.harness import running_stack
from tests.history_recording import record_history
from tests.metrics import SINCE, UNTIL, add_connection, backfill, sync_log, sync_log_opened
from workflows.metric_sync import MetricSync
from workflows.models.metric_sync import SYNC_DEADLINE, MetricSyncInput

GUARD_S = 300  # a hung workflow fails the test instead of hanging it (not a timing check)


def test_the_sync_deadline_ends_it_before_the_schedule_kills_it() -> None:
    # The schedule's execution timeout terminates without cleanup; the sync's own deadline
    # comes first, with time left to close the log.
    assert SYNC_DEADLINE + timedelta(minutes=30) <= SYNC_EXECUTION_TIMEOUT
    assert MetricSyncInput(connection_id="00000000-0000-4000-8000-000000000001").deadline == (
        SYNC_DEADLINE
    )


async def test_cancelled_sync_is_logged_failed_with_reason_cancelled(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.meta.configure_account("5550001", campaigns=5)
        stack.emulators.meta.faults.latency_s = 2.0  # pages come slowly
        connection = await add_connection(stack, account_id="5550001")
        handle = await backfill(stack, connection)
        await sync_log_opened(stack, handle.id)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert isinstance(failure.value.cause, CancelledError)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        await record_history(handle, "metric_sync_cancelled")

        log = await sync_log(stack, handle.id)
        assert (log["status"], log["error_message"]) == ("failed", "cancelled")
        assert log["end_time"] is not None
        connection_row = await stack.fetchrow(
            "SELECT last_synced_at FROM platform_connections WHERE id = %s", connection.id
        )
        assert connection_row == {"last_synced_at": None}


async def test_sync_past_its_deadline_is_logged_failed(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        stack.emulators.meta.configure_account("5550002", campaigns=5)
        # Meta keeps asking for an hour's pause (its rate-limit error, the wait in
        # x-business-use-case-usage): each attempt ends, the next waits an hour.
        stack.emulators.meta.throttle_next(10_000, retry_after_s=3600)
        connection = await add_connection(stack, account_id="5550002")
        handle = await stack.client.start_workflow(
            MetricSync.run,
            MetricSyncInput(
                connection_id=connection.id,
                window_start=SINCE,
                window_end=UNTIL,
                deadline=timedelta(hours=3),
            ),
            id=backfill_workflow_id(connection.id, SINCE, UNTIL),
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), GUARD_S)  # time skips the pauses
        assert "did not finish within 3:00:00" in str(failure.value.cause)
        await record_history(handle, "metric_sync_deadline")

        log = await sync_log(stack, handle.id)
        assert (log["status"], log["error_message"]) == ("failed", "did not finish within 3:00:00")
