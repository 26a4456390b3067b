"""Generations end by their deadline whatever Higgsfield does, a week-long wait for a slot
keeps the history small, and a batch reports each child, failed ones included."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from tests.generations.helpers import generation_row, start, start_batch, user_with_key
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.waiting import eventually
from workflows.models.generation import MAX_DEADLINE, GenerationInput
from workflows.models.generation_batch import BatchPrompt, GenerationBatchInput

HISTORY_WARNING_EVENTS = 10_240  # Temporal warns here; it terminates a run at 51,200
GUARD_S = 300  # a hung workflow fails the test instead of hanging it (not a timing check)


@pytest.mark.parametrize(
    "deadline", [timedelta(0), timedelta(seconds=-1), MAX_DEADLINE + timedelta(seconds=1)]
)
def test_a_deadline_outside_its_bounds_is_refused(deadline: timedelta) -> None:
    with pytest.raises(ValidationError, match="deadline"):
        GenerationInput(
            generation_id=uuid.uuid4(), user_id=uuid.uuid4(), prompt_text="x", deadline=deadline
        )
    assert GenerationInput(
        generation_id=uuid.uuid4(), user_id=uuid.uuid4(), prompt_text="x", deadline=MAX_DEADLINE
    )


async def _hold_the_only_slot(stack: Stack, user_id: uuid.UUID) -> None:
    """A generation of the user that holds its slot and never ends."""
    async with stack.pool.connection() as conn:
        blocker = uuid.uuid4()
        await conn.execute(
            "INSERT INTO generations (id, user_id, prompt_text) VALUES (%s, %s, 'blocker')",
            (blocker, user_id),
        )
        for status in ("submitting", "queued"):
            await conn.execute(
                "UPDATE generations SET status = %s WHERE id = %s", (status, blocker)
            )


async def test_a_week_waiting_for_a_slot_keeps_the_history_small(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        user_id = await user_with_key(stack, tier="free")  # one generation at a time
        await _hold_the_only_slot(stack, user_id)
        request, handle = await start(stack, user_id, "patient", deadline=MAX_DEADLINE)
        result = await asyncio.wait_for(handle.result(), GUARD_S)  # time skips a week

        assert result.status == "failed"
        assert result.error == f"did not finish within {MAX_DEADLINE}"
        row = await generation_row(stack, request.generation_id)
        assert (row["status"], row["error_message"]) == ("failed", result.error)
        assert stack.emulators.higgsfield.submission_count() == 0
        events = len((await handle.fetch_history()).events)
        assert events < HISTORY_WARNING_EVENTS // 4, f"{events} events for a week's wait"


async def test_a_freed_slot_wakes_the_waiting_generation(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        user_id = await user_with_key(stack, tier="free")
        _, first = await start(stack, user_id, "first")
        await eventually(lambda: hf.submission_count() == 1, what="first submitted")
        second_request, second = await start(stack, user_id, "second")

        async def waiting() -> bool:
            history = await second.fetch_history()
            return any(e.HasField("timer_started_event_attributes") for e in history.events)

        await eventually(waiting, what="second waiting for a slot")
        hf.advance(hf.submissions()[0]["request_id"], "completed")
        assert (await first.result()).status == "completed"
        await eventually(lambda: hf.submission_count() == 2, what="second submitted")
        hf.advance(hf.submissions()[1]["request_id"], "completed")
        assert (await second.result()).status == "completed"
        await record_history(second, "generation_woken_for_slot")

        history = await second.fetch_history()
        signals = [
            e.workflow_execution_signaled_event_attributes.signal_name
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert "slot_freed" in signals  # woken, not found by its next poll
        row = await generation_row(stack, second_request.generation_id)
        assert row["higgsfield_job_id"] == hf.submissions()[1]["request_id"]


async def test_status_reads_failing_past_the_deadline_end_it(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.faults.fail_next(1_000_000, status=503, path_prefix="/requests/")  # reads, cancels
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "unlucky", deadline=timedelta(minutes=30))
        result = await asyncio.wait_for(handle.result(), GUARD_S)
        await record_history(handle, "generation_deadline_unreachable")

        assert result.status == "failed"
        assert result.error is not None
        assert result.error.startswith("did not finish within 0:30:00; cancelling it on Higgsfield")
        row = await generation_row(stack, request.generation_id)
        assert (row["status"], row["error_message"]) == ("failed", result.error)
        assert hf.submission_count() == 1


async def test_a_failed_child_does_not_cancel_its_siblings(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await user_with_key(stack, tier="pro")
        stranger = await user_with_key(stack)
        theirs = await stack.fetchrow(
            "INSERT INTO prompts (user_id, prompt_text) VALUES (%s, 'not yours') RETURNING id",
            stranger,
        )
        assert theirs is not None
        batch = GenerationBatchInput(
            batch_id=uuid.uuid4(),
            user_id=user_id,
            prompts=[
                BatchPrompt(prompt_text="variation 1"),
                BatchPrompt(prompt_id=theirs["id"]),
                BatchPrompt(prompt_text="variation 3"),
            ],
        )
        handle = await start_batch(stack, batch)
        result = await handle.result()
        await record_history(handle, "generation_batch_child_failed")

        assert [r.status for r in result.results] == ["completed", "failed", "completed"]
        failed = result.results[1]
        assert failed.error is not None and "is not a prompt of user" in failed.error
        rows = await stack.fetchall(
            "SELECT id, status FROM generations WHERE batch_id = %s", batch.batch_id
        )
        assert sorted(r["status"] for r in rows) == ["completed", "completed"]
        assert {r["id"] for r in rows} == {
            result.results[0].generation_id,
            result.results[2].generation_id,
        }
        assert stack.emulators.higgsfield.submission_count() == 2
