"""Rows the app inserts become workflows: once, promptly, and durably; invalid rows end
failed with a readable reason and never come back; a cancel request cancels."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from tests.app.helpers import (
    GATED_PLAN,
    app_user,
    deafen,
    exists,
    insert_batch,
    insert_generation,
    insert_job,
    request_cancel,
    row,
    runs,
)
from tests.history_recording import record_history
from tests.waiting import eventually
from workers.dispatch.rows import RowDispatcher
from workers.starters import start_generation
from workflows.models.generation import GenerationInput


async def _status(stack: Any, table: str, row_id: uuid.UUID, *wanted: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await row(stack, table, row_id)
        return found if found["status"] in wanted else None

    return await eventually(probe, timeout=60, what=f"{table} {row_id} {wanted}")


async def test_inserted_generation_starts_one_generation(app_stack: Any) -> None:
    user = await app_user(app_stack)
    generation_id = await insert_generation(app_stack, user)
    await _status(app_stack, "generations", generation_id, "completed")
    await app_stack.client.get_workflow_handle(f"generation-{generation_id}").result()
    done = await row(app_stack, "generations", generation_id)
    assert done["temporal_workflow_id"] == f"generation-{generation_id}"
    assert done["result_urls"] and done["saved_asset_ids"]
    assert await runs(app_stack.client, f"generation-{generation_id}") == 1


async def test_inserted_job_starts_one_agent_job(app_stack: Any) -> None:
    user = await app_user(app_stack)
    job_id = await insert_job(app_stack, user)
    done = await _status(app_stack, "jobs", job_id, "completed")
    assert done["temporal_workflow_id"] == f"job-{job_id}"
    steps = await app_stack.fetchall(
        "SELECT status FROM job_steps WHERE job_id = %s ORDER BY step_index", job_id
    )
    assert [s["status"] for s in steps] == ["completed", "completed"]
    assert await runs(app_stack.client, f"job-{job_id}") == 1


INVALID_GENERATIONS = [
    ("unknown model", {"model": "dall-e-3"}, "unknown model 'dall-e-3'"),
    ("model that is a path escape", {"model": "../admin"}, "unknown model"),
    ("empty prompt", {"prompt_text": "   "}, "no prompt text"),
    ("settings not an object", {"settings": ["quality", "high"]}, "settings must be a JSON"),
    ("batch id without size", {"batch_id": uuid.uuid4()}, "needs batch_size"),
    ("over-long prompt", {"prompt_text": "x" * 4001}, "longer than 4000"),
]


@pytest.mark.parametrize(
    ("columns", "reason"),
    [(c, r) for _, c, r in INVALID_GENERATIONS],
    ids=[name for name, _, _ in INVALID_GENERATIONS],
)
async def test_invalid_generation_fails_readably_once(
    app_stack: Any, columns: dict[str, Any], reason: str
) -> None:
    user = await app_user(app_stack)
    prompt = columns.pop("prompt_text", "a cat")
    generation_id = await insert_generation(app_stack, user, prompt, **columns)
    failed = await _status(app_stack, "generations", generation_id, "failed")
    assert reason in failed["error_message"]
    await _never_again(app_stack, "generations", generation_id, f"generation-{generation_id}")


async def test_generation_of_a_user_without_a_key_fails(app_stack: Any) -> None:
    user = await app_user(app_stack, with_key=False)
    generation_id = await insert_generation(app_stack, user)
    failed = await _status(app_stack, "generations", generation_id, "failed")
    assert "no Higgsfield key stored" in failed["error_message"]
    await _never_again(app_stack, "generations", generation_id, f"generation-{generation_id}")


INVALID_JOBS = [
    ("no plan", {"plan": None}, "has no plan"),
    ("plan is a list", {"plan": ([1, 2])}, "invalid plan"),
    ("no steps", {"plan": ({"steps": []})}, "invalid plan: steps"),
    (
        "unknown action",
        {"plan": ({"steps": [{"action": {"action": "rm_rf"}, "description": "x"}]})},
        "invalid plan: steps.0.action",
    ),
    (
        "javascript url",
        {
            "plan": (
                {
                    "steps": [
                        {
                            "action": {"action": "navigate", "url": "javascript:x"},
                            "description": "x",
                        }
                    ]
                }
            )
        },
        "invalid plan: steps.0.action.navigate.url",
    ),
    (
        "extra plan field",
        {"plan": ({"steps": GATED_PLAN["steps"], "approver_email": "x@evil.example"})},
        "invalid plan: approver_email",
    ),
    ("no workspace", {"workspace_id": None}, "no workspace_id"),
    ("blank title", {"title": "  "}, "no title"),
    ("over-long title", {"title": "t" * 201}, "invalid job: title"),
]


@pytest.mark.parametrize(
    ("columns", "reason"),
    [(c, r) for _, c, r in INVALID_JOBS],
    ids=[name for name, _, _ in INVALID_JOBS],
)
async def test_invalid_job_fails_readably_once(
    app_stack: Any, columns: dict[str, Any], reason: str
) -> None:
    user = await app_user(app_stack)
    job_id = await insert_job(app_stack, user, **columns)
    failed = await _status(app_stack, "jobs", job_id, "failed")
    assert reason in failed["error_message"]
    await _never_again(app_stack, "jobs", job_id, f"job-{job_id}")


async def test_inactive_workspace_fails_the_job(app_stack: Any) -> None:
    user = await app_user(app_stack)
    await app_stack.fetchrow(
        "UPDATE workspaces SET is_active = false WHERE id = %s RETURNING id", user.workspace_id
    )
    job_id = await insert_job(app_stack, user)
    failed = await _status(app_stack, "jobs", job_id, "failed")
    assert "is not active" in failed["error_message"]


async def _never_again(stack: Any, table: str, row_id: uuid.UUID, workflow_id: str) -> None:
    """The refused row started nothing, and a sweep leaves it as it is."""
    assert not await exists(stack.client, workflow_id)
    dispatcher = RowDispatcher(stack.pool, stack.client, stack.settings)
    await dispatcher.sweep()
    assert (await row(stack, table, row_id))["status"] == "failed"
    log = await stack.fetchall(
        "SELECT from_status, to_status FROM status_transitions WHERE entity_id = %s ORDER BY id",
        row_id,
    )
    assert [(r["from_status"], r["to_status"]) for r in log] == [
        (None, "pending"),
        ("pending", "failed"),
    ]
    assert not await exists(stack.client, workflow_id)


async def test_cancel_request_cancels_a_waiting_job(app_stack: Any) -> None:
    user = await app_user(app_stack)
    job_id = await insert_job(app_stack, user, plan=(GATED_PLAN))
    await _status(app_stack, "jobs", job_id, "waiting_approval")
    await eventually(  # the approval email left (a cancel during its send: RELIABILITY)
        lambda: app_stack.fetchrow(
            "SELECT 1 FROM approvals WHERE job_id = %s AND resend_message_id IS NOT NULL", job_id
        ),
        what="approval email",
    )
    assert await request_cancel(app_stack, user, "jobs", job_id) == 1
    cancelled = await _status(app_stack, "jobs", job_id, "cancelled")
    assert cancelled["cancel_delivered_at"] is not None
    with pytest.raises(WorkflowFailureError):  # cancelled
        await app_stack.client.get_workflow_handle(f"job-{job_id}").result()
    approval = await app_stack.fetchrow("SELECT status FROM approvals WHERE job_id = %s", job_id)
    assert approval == {"status": "cancelled"}


async def test_cancel_request_on_a_new_generation_ends_it(app_stack: Any) -> None:
    # Right after the insert: the cancel may find the workflow started or not yet; either
    # way the row ends cancelled.
    user = await app_user(app_stack)
    generation_id = await insert_generation(app_stack, user)
    await request_cancel(app_stack, user, "generations", generation_id)
    dispatcher = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)

    async def ended_row() -> dict[str, Any] | None:
        await dispatcher.sweep()  # a cancel before the workflow persisted its row
        found = await row(app_stack, "generations", generation_id)
        return found if found["status"] in ("cancelled", "completed") else None

    ended = await eventually(ended_row, timeout=60, what="the generation ended")
    if ended["status"] == "cancelled":
        assert ended["error_message"]


async def test_cancel_of_a_row_nobody_started_ends_it_without_a_workflow(
    app_stack: Any,
) -> None:
    user = await app_user(app_stack)
    await deafen(app_stack)  # no worker hears the insert or the cancel
    generation_id = await insert_generation(app_stack, user)
    await request_cancel(app_stack, user, "generations", generation_id)
    dispatcher = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    await dispatcher.sweep()  # it finds the row twice: new, and with a cancel request
    cancelled = await row(app_stack, "generations", generation_id)
    assert cancelled["status"] == "cancelled"
    assert cancelled["error_message"] == "cancelled on request before it started"
    assert not await exists(app_stack.client, f"generation-{generation_id}")


async def test_a_start_before_a_crash_is_not_repeated(app_stack: Any) -> None:
    # A dispatcher started the workflow and died before recording it: the next one finds
    # the id taken and records it, and the generation runs once.
    user = await app_user(app_stack)
    await deafen(app_stack)  # this stack's dispatcher hears nothing
    generation_id = await insert_generation(app_stack, user)
    await start_generation(
        app_stack.client,
        app_stack.settings,
        GenerationInput(generation_id=generation_id, user_id=user.user_id, prompt_text="a cat"),
    )
    dispatcher = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    assert await dispatcher.handle("generations", generation_id) == "started"
    assert (await row(app_stack, "generations", generation_id))["temporal_workflow_id"]
    await _status(app_stack, "generations", generation_id, "completed")
    assert await runs(app_stack.client, f"generation-{generation_id}") == 1


async def test_two_dispatchers_start_each_row_once(app_stack: Any) -> None:
    user = await app_user(app_stack)
    other = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    ids = [await insert_generation(app_stack, user, f"variation {n}") for n in range(6)]
    # The stack's dispatcher heard them; the other sweeps at the same time.
    await other.sweep()
    for generation_id in ids:
        done = await _status(app_stack, "generations", generation_id, "completed")
        assert done["temporal_workflow_id"] == f"generation-{generation_id}"
        assert await runs(app_stack.client, f"generation-{generation_id}") == 1
        log = await app_stack.fetchall(
            "SELECT to_status FROM status_transitions WHERE entity_id = %s", generation_id
        )
        assert [r["to_status"] for r in log].count("submitting") == 1


async def test_batch_rows_start_one_generation_batch(app_stack: Any) -> None:
    user = await app_user(app_stack)
    batch_id, ids = await insert_batch(app_stack, user, [f"variation {n}" for n in range(3)])
    for generation_id in ids:
        done = await _status(app_stack, "generations", generation_id, "completed")
        assert done["temporal_workflow_id"] == f"generation-{generation_id}"
    assert await runs(app_stack.client, f"generation-batch-{batch_id}") == 1
    handle = app_stack.client.get_workflow_handle(f"generation-batch-{batch_id}")
    result = await handle.result()
    await record_history(handle, "generation_batch_from_rows")
    # One child per row, named by the row (no prompt_index here: their order is the ids').
    assert sorted(r["generation_id"] for r in result["results"]) == sorted(map(str, ids))


async def test_incomplete_batch_waits_then_fails(app_stack: Any) -> None:
    user = await app_user(app_stack)
    await deafen(app_stack)  # this test's dispatcher acts alone
    batch_id, ids = await insert_batch(app_stack, user, ["one", "two"], size=3)
    dispatcher = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    assert await dispatcher.dispatch_batch(batch_id) == "waiting"
    assert {(await row(app_stack, "generations", i))["status"] for i in ids} == {"pending"}
    await app_stack.fetchrow(
        "UPDATE generations SET created_at = created_at - interval '1 day' "
        "WHERE batch_id = %s RETURNING id",
        batch_id,
    )
    assert await dispatcher.dispatch_batch(batch_id) == "failed"
    for generation_id in ids:
        failed = await row(app_stack, "generations", generation_id)
        assert failed["status"] == "failed"
        assert "has 2 of its 3 rows after" in failed["error_message"]
    assert not await exists(app_stack.client, f"generation-batch-{batch_id}")


async def test_batch_rows_that_disagree_fail_together(app_stack: Any) -> None:
    user = await app_user(app_stack)
    batch_id, ids = await insert_batch(app_stack, user, ["one", "two"], size=3)
    late = await insert_generation(
        app_stack, user, "three", batch_id=batch_id, batch_size=3, model="soul-2"
    )
    for generation_id in [*ids, late]:
        failed = await _status(app_stack, "generations", generation_id, "failed")
        assert failed["error_message"]
    assert not await exists(app_stack.client, f"generation-batch-{batch_id}")


async def test_a_row_after_its_batch_started_fails(app_stack: Any) -> None:
    user = await app_user(app_stack)
    batch_id, ids = await insert_batch(app_stack, user, ["one", "two"])
    await _status(app_stack, "generations", ids[0], "completed")
    late = await insert_generation(app_stack, user, "three", batch_id=batch_id, batch_size=2)
    failed = await _status(app_stack, "generations", late, "failed")
    assert "had already started" in failed["error_message"]


async def test_cancelling_one_variation_cancels_the_batch(app_stack: Any) -> None:
    user = await app_user(app_stack)
    app_stack.emulators.higgsfield.auto_advance = False  # keep them queued
    _, ids = await insert_batch(app_stack, user, ["one", "two"])

    async def one_queued() -> bool:
        rows = [await row(app_stack, "generations", i) for i in ids]
        return any(r["status"] == "queued" for r in rows)

    await eventually(one_queued, what="a variation on Higgsfield")
    await request_cancel(app_stack, user, "generations", ids[1])
    for generation_id in ids:
        await _status(app_stack, "generations", generation_id, "cancelled")


async def test_a_lost_listening_connection_loses_no_row(app_stack: Any) -> None:
    # Postgres ends the dispatcher's LISTEN session (a restart, a failover, a pooler):
    # notifications sent meanwhile are lost; the dispatcher reconnects and sweeps.
    user = await app_user(app_stack)
    assert app_stack.dispatcher.connections == 1
    await app_stack.fetchrow(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query ILIKE 'LISTEN %%orchestrator_dispatch%%' AND datname = current_database()"
    )
    ids = [await insert_generation(app_stack, user, f"during the outage {n}") for n in range(3)]
    for generation_id in ids:
        done = await _status(app_stack, "generations", generation_id, "completed")
        assert done["temporal_workflow_id"] == f"generation-{generation_id}"
    assert app_stack.dispatcher.connections == 2  # it reconnected


async def test_a_cancelled_row_whose_workflow_ended_unrecorded_ends_cancelled(
    app_stack: Any,
) -> None:
    # The workflow took the row on (submitting) and then ended without recording its end
    # (terminated by an operator, say); the app asks to cancel: the row must not stay
    # submitting for ever.
    user = await app_user(app_stack)
    await deafen(app_stack)
    generation_id = await insert_generation(app_stack, user)
    handle = await app_stack.client.start_workflow(
        "Generation",
        GenerationInput(generation_id=generation_id, user_id=user.user_id, prompt_text="x"),
        id=f"generation-{generation_id}",
        task_queue=f"nobody-polls-{uuid.uuid4()}",
    )
    await handle.terminate("gone before it recorded anything")
    await app_stack.fetchrow(
        "UPDATE generations SET status = 'submitting', temporal_workflow_id = %s "
        "WHERE id = %s RETURNING id",
        handle.id,
        generation_id,
    )
    await request_cancel(app_stack, user, "generations", generation_id)
    dispatcher = RowDispatcher(app_stack.pool, app_stack.client, app_stack.settings)
    await dispatcher.sweep()  # delivers (nothing to cancel: it has closed)
    assert (await row(app_stack, "generations", generation_id))["status"] == "submitting"
    await app_stack.fetchrow(  # as if the grace had passed
        "UPDATE generations SET cancel_delivered_at = now() - interval '1 minute' "
        "WHERE id = %s RETURNING id",
        generation_id,
    )
    await dispatcher.sweep()
    ended = await row(app_stack, "generations", generation_id)
    assert ended["status"] == "cancelled"
    assert ended["error_message"] == (
        "cancelled on request; its workflow ended before it could record it"
    )
