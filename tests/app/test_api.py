"""The HTTP API as an app uses it: start work, follow it, cancel it and decide approvals
with the user's Supabase token; a replayed POST does nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.app.api_client import call
from tests.app.helpers import GATED_PLAN, app_user, row, runs
from tests.security.rls_helpers import digest
from tests.waiting import eventually
from workers.starters import start_agent_job
from workflows.models.agent_job import AgentJobInput
from workflows.models.approval import ApprovalPolicy
from workflows.models.steps import Step


async def _until(stack: Any, path: str, token: str, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await call(stack, "GET", path, token)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body if body["status"] in statuses else None

    return await eventually(probe, timeout=60, what=f"{path} {statuses}")


async def test_a_generation_started_by_api_runs_once_per_idempotency_key(
    api_stack: Any,
) -> None:
    stack, project = api_stack
    user = await app_user(stack)
    token = project.token(user.user_id)  # ES256, kid from the JWKS
    body = {"prompt_text": "a beach at sunset", "settings": {"quality": "720p"}}
    first = await call(stack, "POST", "/v1/generations", token, body, key="gen-1")
    assert first.status_code == 202, first.text
    again = await call(stack, "POST", "/v1/generations", token, body, key="gen-1")
    assert (again.status_code, again.json()) == (202, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    generation = first.json()
    # Started by this request, or by the worker's dispatcher that heard of it first.
    assert generation["workflow_id"] == f"generation-{generation['id']}"
    done = await _until(stack, f"/v1/generations/{generation['id']}", token, "completed")
    assert done["result_urls"] and done["workflow_id"] == f"generation-{generation['id']}"
    assert await runs(stack.client, generation["workflow_id"]) == 1
    assert stack.emulators.higgsfield.submission_count() == 1
    owned = await row(stack, "generations", uuid.UUID(generation["id"]))
    assert owned["user_id"] == user.user_id

    # The same key with another body: refused, nothing started. The run has ended first:
    # its last writes (the asset, the row's finish) land after the row reads completed.
    await stack.client.get_workflow_handle(generation["workflow_id"]).result()
    before = await digest(_url(stack))
    other = {**body, "prompt_text": "a dog"}
    reused = await call(stack, "POST", "/v1/generations", token, other, key="gen-1")
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert await digest(_url(stack)) == before


async def test_concurrent_requests_with_one_key_start_one_generation(api_stack: Any) -> None:
    stack, project = api_stack
    user = await app_user(stack)
    token = project.legacy_token(user.user_id)  # the legacy HS256 secret
    body = {"prompt_text": "twins?"}
    answers = await asyncio.gather(
        *(call(stack, "POST", "/v1/generations", token, body, key="k") for _ in range(4))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    rows = await stack.fetchall("SELECT id FROM generations WHERE user_id = %s", user.user_id)
    assert len(rows) == 1
    assert await runs(stack.client, answers[0].json()["workflow_id"]) == 1


async def test_a_job_started_by_api_is_decided_in_the_app(api_stack: Any) -> None:
    stack, project = api_stack
    user = await app_user(stack)
    token = project.token(user.user_id, key=project.published[1])  # RS256
    body = {
        "workspace_id": str(user.workspace_id),
        "title": "Tidy the specs",
        "steps": GATED_PLAN["steps"],
    }
    started = await call(stack, "POST", "/v1/jobs", token, body)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    waiting = await _until(stack, f"/v1/jobs/{job_id}", token, "waiting_approval")
    await eventually(
        lambda: stack.fetchrow(
            "SELECT 1 FROM approvals WHERE job_id = %s AND resend_message_id IS NOT NULL", job_id
        ),
        what="approval email",
    )
    approval = waiting["approvals"][0]
    assert (approval["status"], approval["description"]) == (
        "pending",
        "Delete the 'Old Specs' folder",
    )
    path = f"/v1/approvals/{approval['id']}/decision"
    decided = await call(stack, "POST", path, token, {"decision": "approve", "note": "fine"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["decision_channel"] == "app"
    assert decided.json()["decided_by"] == user.email
    assert decided.json()["decision_note"] == "fine"
    second = await call(stack, "POST", path, token, {"decision": "reject"})
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "decision_refused"
    done = await _until(stack, f"/v1/jobs/{job_id}", token, "completed")
    assert [s["status"] for s in done["steps"]] == ["completed"] * 3


async def test_a_batch_started_by_api_runs_as_one_generation_batch(api_stack: Any) -> None:
    stack, project = api_stack
    user = await app_user(stack)
    token = project.token(user.user_id)
    prompts = [{"prompt_text": f"variation {n}"} for n in range(3)]
    started = await call(stack, "POST", "/v1/generation-batches", token, {"prompts": prompts})
    assert started.status_code == 202, started.text
    batch = started.json()
    assert len(batch["generations"]) == 3
    for generation in batch["generations"]:
        await _until(stack, f"/v1/generations/{generation['id']}", token, "completed")
    assert await runs(stack.client, batch["workflow_id"]) == 1
    shown = await call(stack, "GET", f"/v1/generation-batches/{batch['batch_id']}", token)
    assert {g["status"] for g in shown.json()["generations"]} == {"completed"}


async def test_a_cancel_by_api_ends_the_job_cancelled(api_stack: Any) -> None:
    stack, project = api_stack
    user = await app_user(stack)
    token = project.token(user.user_id)
    body = {"workspace_id": str(user.workspace_id), "title": "t", "steps": GATED_PLAN["steps"]}
    job_id = (await call(stack, "POST", "/v1/jobs", token, body)).json()["id"]
    await _until(stack, f"/v1/jobs/{job_id}", token, "waiting_approval")
    await eventually(
        lambda: stack.fetchrow(
            "SELECT 1 FROM approvals WHERE job_id = %s AND resend_message_id IS NOT NULL", job_id
        ),
        what="approval email",
    )
    cancelled = await call(stack, "POST", f"/v1/jobs/{job_id}/cancel", token)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["cancel_requested_at"] is not None
    await _until(stack, f"/v1/jobs/{job_id}", token, "cancelled")
    again = await call(stack, "POST", f"/v1/jobs/{job_id}/cancel", token)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_finished")


def _url(stack: Any) -> str:
    return str(stack.settings.database_url.get_secret_value())


async def test_the_named_approver_decides_and_nobody_else(api_stack: Any) -> None:
    stack, project = api_stack
    owner, approver, stranger = [await app_user(stack) for _ in range(3)]
    # The stranger writes the approver's address into their own profile: it must not count
    # (profiles are the user's to write; the approver is who Supabase Auth says they are).
    async with stack.pool.connection() as conn:
        await conn.execute(
            "UPDATE profiles SET email_address = NULL WHERE id = %s", (approver.user_id,)
        )
        await conn.execute(
            "UPDATE profiles SET email_address = %s WHERE id = %s",
            (approver.email, stranger.user_id),
        )
    request = AgentJobInput(
        job_id=uuid.uuid4(),
        user_id=owner.user_id,
        workspace_id=owner.workspace_id,
        title="Pay the invoice",
        steps=[Step.model_validate(s) for s in GATED_PLAN["steps"]],
        approval=ApprovalPolicy(approver_email=approver.email),
    )
    await start_agent_job(stack.client, stack.settings, request)
    gate = await eventually(
        lambda: stack.fetchrow(
            "SELECT id FROM approvals WHERE job_id = %s AND resend_message_id IS NOT NULL",
            request.job_id,
        ),
        timeout=60,
        what="the gate",
    )
    path = f"/v1/approvals/{gate['id']}"
    before = await digest(_url(stack))
    for token in (project.token(stranger.user_id), project.legacy_token(stranger.user_id)):
        assert (await call(stack, "GET", path, token)).status_code == 404
        refused = await call(stack, "POST", f"{path}/decision", token, {"decision": "approve"})
        assert refused.status_code == 404
    assert await digest(_url(stack)) == before
    token = project.token(approver.user_id)
    shown = await call(stack, "GET", path, token)
    assert (shown.status_code, shown.json()["status"]) == (200, "pending")
    decided = await call(stack, "POST", f"{path}/decision", token, {"decision": "reject"})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decided_by"]) == ("rejected", approver.email)
    owners = await call(stack, "GET", f"/v1/jobs/{request.job_id}", project.token(owner.user_id))
    assert owners.json()["approvals"][0]["decision_channel"] == "app"
