"""Generation end to end against the Higgsfield emulator: each outcome, webhooks and
polling, forged webhooks, cancellation, assets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.higgsfield import GenerationRef
from tests.generations.helpers import (
    generation_row,
    start,
    status_reads,
    submitted_then_terminated,
    user_with_key,
)
from tests.harness import running_stack
from tests.history_recording import record_history
from tests.waiting import eventually


async def test_completed_generation_copies_results_into_asset_storage(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, asset_storage_dir=str(tmp_path)
    ) as stack:
        stack.emulators.higgsfield.images = 2
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "a beach at sunset, golden light")
        result = await handle.result()
        await record_history(handle, "generation_completed")
        assert result.status == "completed" and len(result.asset_ids) == 2
        row = await generation_row(stack, request.generation_id)
        assert row["status"] == "completed"
        assert row["higgsfield_job_id"] == result.request_id
        assert row["started_at"] and row["completed_at"] and len(row["result_urls"]) == 2
        assert [str(a) for a in row["saved_asset_ids"]] == result.asset_ids
        assets = await stack.fetchall(
            "SELECT file_path, file_size FROM assets WHERE user_id = %s ORDER BY file_path",
            user_id,
        )
        for asset in assets:
            stored = tmp_path / asset["file_path"]
            assert stored.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert stored.stat().st_size == asset["file_size"]
        transitions = await stack.fetchall(
            "SELECT to_status FROM status_transitions WHERE entity_id = %s ORDER BY id",
            request.generation_id,
        )
        statuses = [t["to_status"] for t in transitions]
        assert statuses[:3] == ["pending", "submitting", "queued"]
        assert statuses[-1] == "completed" and len(statuses) == len(set(statuses))
        submission = stack.emulators.higgsfield.submissions()[0]
        assert submission["identity"] == "hf_key_id"
        assert "hf_key_secret_value" not in str(row)


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [("failed", "failed", "Higgsfield failed"), ("nsfw", "nsfw", "NSFW")],
)
async def test_failed_and_nsfw_outcomes_are_recorded(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    outcome: str,
    status: str,
    reason: str,
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.higgsfield.set_outcome(outcome)
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "portrait")
        result = await handle.result()
        await record_history(handle, f"generation_{outcome}")
        assert result.status == status
        row = await generation_row(stack, request.generation_id)
        assert row["status"] == status and reason in row["error_message"]
        assert row["saved_asset_ids"] == []


async def test_webhook_before_the_first_poll_finishes_it_with_one_status_read(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.higgsfield.queue_s = 0.05
        stack.emulators.higgsfield.run_s = 0.05
        user_id = await user_with_key(stack)
        _, handle = await start(stack, user_id, "fast one")
        assert (await handle.result()).status == "completed"
        assert await status_reads(handle) == 1


async def test_webhook_after_a_poll_and_duplicated_webhooks_change_nothing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        hf.set_outcome("webhook_duplicated")
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "slow one")
        await eventually(lambda: status_reads(handle), what="a first poll")
        request_id = hf.submissions()[0]["request_id"]
        await asyncio.to_thread(hf.advance, request_id, "completed")
        assert (await handle.result()).status == "completed"
        await eventually(lambda: len(hf.deliveries(request_id)) >= 2, what="duplicate webhook")
        transitions = await stack.fetchall(
            "SELECT to_status FROM status_transitions WHERE entity_id = %s",
            request.generation_id,
        )
        assert [t["to_status"] for t in transitions].count("completed") == 1


async def test_lost_webhook_completes_by_polling(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.higgsfield.set_outcome("webhook_lost")
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "no webhook")
        assert (await handle.result()).status == "completed"
        assert not any(d["delivered"] for d in stack.emulators.higgsfield.deliveries())
        assert (await generation_row(stack, request.generation_id))["status"] == "completed"


async def test_forged_and_malformed_webhooks_are_refused(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "target")
        await eventually(lambda: hf.submissions(), what="submission")
        url = f"{stack.ingress_url}/webhooks/higgsfield/{request.generation_id}"
        body = {"request_id": hf.submissions()[0]["request_id"], "status": "completed"}
        async with httpx.AsyncClient() as http:
            assert (await http.post(f"{url}?token=forged", json=body)).status_code == 403
            assert (await http.post(url, json=body)).status_code == 403
            token = hf.submissions()[0]["webhook_url"].split("token=")[1]
            assert (await http.post(f"{url}?token={token}", content=b"{")).status_code == 400
            other = f"{stack.ingress_url}/webhooks/higgsfield/not-a-uuid?token={token}"
            assert (await http.post(other, json=body)).status_code == 404
            # A genuine-looking hint while Higgsfield still says queued changes nothing.
            ok = await http.post(f"{url}?token={token}", json=body)
            assert ok.status_code == 200
        await eventually(lambda: _reads_at_least(handle, 1), what="status read after hint")
        assert (await generation_row(stack, request.generation_id))["status"] == "queued"
        await handle.cancel()


async def _reads_at_least(handle, n):  # type: ignore[no-untyped-def]
    return await status_reads(handle) >= n


async def test_cancel_while_queued_cancels_on_higgsfield(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "cancel me")
        await eventually(lambda: hf.submissions(), what="submission")
        await eventually(
            lambda: _status_is(stack, request.generation_id, "queued"), what="queued row"
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await record_history(handle, "generation_cancelled")
        assert hf.status_of(hf.submissions()[0]["request_id"]) == "canceled"
        row = await generation_row(stack, request.generation_id)
        assert row["status"] == "cancelled"


async def test_cancel_during_the_submit_cancels_the_request_on_higgsfield(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # The cancel arrives while Higgsfield is still answering the submit: the workflow waits
    # for the submit's outcome instead of forgetting a request that will then run anyway.
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        hf.faults.latency_s = 1.5
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "cancel me mid-submit")
        await eventually(
            lambda: _submit_started(stack, request.generation_id), what="submit started"
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        history = await handle.fetch_history()
        kinds = [e.event_type for e in history.events]
        # The path under test: the cancel request came before the submit's result.
        assert kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED) < kinds.index(
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        )
        await record_history(handle, "generation_cancelled_during_submit")
        assert [hf.status_of(s["request_id"]) for s in hf.submissions()] == ["canceled"]
        row = await generation_row(stack, request.generation_id)
        assert row["status"] == "cancelled"
        assert row["higgsfield_job_id"] == hf.submissions()[0]["request_id"]


async def _submit_started(stack, generation_id):  # type: ignore[no-untyped-def]
    row = await stack.fetchrow(
        "SELECT submit_started_at FROM generations WHERE id = %s", generation_id
    )
    return row is not None and row["submit_started_at"] is not None


async def test_cancel_retried_after_its_answer_was_lost_still_counts_as_cancelled(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # The first cancel reaches Higgsfield but its answer is lost (the activity is retried);
    # Higgsfield refuses the second one, and the status read shows the first one worked.
    # The test cancels on Higgsfield itself: the workflow must not read the status first.
    async with (
        running_stack(db_url, temporal_env.client, task_queue) as stack,
        submitted_then_terminated(stack, "cancel me twice") as (generation_id, request_id, acts),
    ):
        ref = GenerationRef(generation_id=generation_id, request_id=request_id)
        first = await acts.cancel_on_higgsfield(ref)
        assert first.cancelled and stack.emulators.higgsfield.status_of(request_id) == "canceled"
        # No longer queued: Higgsfield refuses this one, the status read settles it.
        retried = await acts.cancel_on_higgsfield(ref)
    assert retried.cancelled, retried.reason


async def test_cancel_of_a_request_higgsfield_does_not_know_is_refused_not_retried(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # Higgsfield answers 404 to the cancel and to the status read: no retry can change
    # that, so the activity answers "not cancelled" instead of raising (and retrying
    # forever). A 429 is the one refusal worth retrying, after a pause.
    async with (
        running_stack(db_url, temporal_env.client, task_queue) as stack,
        submitted_then_terminated(stack, "cancel what Higgsfield forgot") as (gid, _, acts),
    ):
        unknown = GenerationRef(generation_id=gid, request_id="no-such-id")
        refused = await acts.cancel_on_higgsfield(unknown)
        stack.emulators.higgsfield.faults.fail_next(status=429, path_prefix="/requests/")
        with pytest.raises(ApplicationError) as limited:
            await acts.cancel_on_higgsfield(unknown)
    assert not refused.cancelled and "404" in (refused.reason or "")
    assert not limited.value.non_retryable
    assert limited.value.next_retry_delay is not None


async def _status_is(stack, generation_id, status):  # type: ignore[no-untyped-def]
    return (await generation_row(stack, generation_id))["status"] == status


async def test_cancel_while_in_progress_is_refused_and_recorded(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        user_id = await user_with_key(stack)
        request, handle = await start(stack, user_id, "too late to cancel")
        await eventually(lambda: hf.submissions(), what="submission")
        request_id = hf.submissions()[0]["request_id"]
        await asyncio.to_thread(hf.advance, request_id, "in_progress")
        await eventually(
            lambda: _status_is(stack, request.generation_id, "queued"), what="queued row"
        )
        await handle.cancel()
        await eventually(
            lambda: _error_mentions(stack, request.generation_id, "refused"), what="reason"
        )
        await asyncio.to_thread(hf.advance, request_id, "completed")
        result = await handle.result()
        assert result.status == "completed"
        row = await generation_row(stack, request.generation_id)
        assert "cancel requested but Higgsfield refused it" in row["error_message"]


async def _error_mentions(stack, generation_id, text):  # type: ignore[no-untyped-def]
    return text in ((await generation_row(stack, generation_id))["error_message"] or "")
