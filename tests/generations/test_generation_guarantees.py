"""Generation guarantees: one submission despite a failure after the call, the deadline,
a wrong encryption key, and the per-user concurrency limit of a batch."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from tests.faults import fail_first_update, failures_injected
from tests.generations.helpers import generation_row, start, start_batch, user_with_key
from tests.harness import running_stack
from tests.history_recording import record_history
from workflows.models.generation_batch import BatchPrompt, GenerationBatchInput


async def test_failure_between_submit_and_record_submits_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        async with stack.pool.connection() as conn:
            await fail_first_update(conn, "generations", "higgsfield_job_id")
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "only once please")
        result = await handle.result()
        await record_history(handle, "generation_recovered_from_webhook")
        assert result.status == "completed"
        assert stack.emulators.higgsfield.submission_count() == 1
        async with stack.pool.connection() as conn:
            assert await failures_injected(conn) == 2  # failed once, then the webhook's id
        row = await generation_row(stack, request.generation_id)
        assert row["higgsfield_job_id"] == stack.emulators.higgsfield.submissions()[0]["request_id"]


async def test_deadline_fails_and_cancels_on_higgsfield(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False  # stays queued forever
        user_id = await user_with_key(stack)
        request, handle = await start(
            stack, user_id, "never finishes", deadline=timedelta(minutes=30)
        )
        result = await handle.result()
        await record_history(handle, "generation_deadline")
        assert result.status == "failed"
        row = await generation_row(stack, request.generation_id)
        assert row["status"] == "failed"
        assert row["error_message"] == "did not finish within 0:30:00; cancelled on Higgsfield"
        assert hf.status_of(hf.submissions()[0]["request_id"]) == "canceled"


async def test_wrong_encryption_key_fails_clearly_without_submitting(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        other_key = base64.b64encode(os.urandom(32)).decode()
        user_id = await user_with_key(stack, key_b64=other_key)
        request, handle = await start(stack, user_id, "locked out")
        result = await handle.result()
        assert result.status == "failed"
        row = await generation_row(stack, request.generation_id)
        assert "which is not configured" in row["error_message"]
        assert stack.emulators.higgsfield.submission_count() == 0


async def test_batch_respects_the_per_user_concurrency_limit(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await user_with_key(stack, tier="basic")  # 2 at a time
        batch = GenerationBatchInput(
            batch_id=uuid.uuid4(),
            user_id=user_id,
            prompts=[BatchPrompt(prompt_text=f"variation {i}") for i in range(5)],
        )
        handle = await start_batch(stack, batch)
        result = await handle.result()
        await record_history(handle, "generation_batch")
        assert [r.status for r in result.results] == ["completed"] * 5
        events = await stack.fetchall(
            "SELECT t.entity_id, t.to_status FROM status_transitions t "
            "JOIN generations g ON g.id = t.entity_id WHERE g.batch_id = %s ORDER BY t.id",
            batch.batch_id,
        )
        active, peak = set(), 0
        for event in events:
            if event["to_status"] == "submitting":
                active.add(event["entity_id"])
            elif event["to_status"] in ("completed", "failed", "nsfw", "cancelled"):
                active.discard(event["entity_id"])
            peak = max(peak, len(active))
        assert peak == 2
        assert stack.emulators.higgsfield.submission_count() == 5
