"""The /v1 API for teams (issue 27): a job started in one of the caller's organizations
(not another's), its approval decided by the approvers the organization's route names,
each counted once, a decision handed to a colleague, and nothing of it visible to anyone
outside the organization."""

from __future__ import annotations

import uuid
from typing import Any

from tests.app.api_client import call
from tests.app.helpers import GATED_PLAN, AppUser, app_user
from tests.waiting import eventually


async def _member(stack: Any, org_id: uuid.UUID, user: AppUser, role: str) -> None:
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO team_members (org_id, user_id, role) VALUES (%s, %s, %s)",
            (org_id, user.user_id, role),
        )


async def _get(stack: Any, path: str, token: str) -> dict[str, Any]:
    answer = await call(stack, "GET", path, token)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_teams_job_is_decided_by_its_route_and_delegated_in_the_app(
    api_stack: Any,
) -> None:
    stack, project = api_stack
    owner, a, b, c, outsider = [await app_user(stack, with_key=False) for _ in range(5)]
    org_id = uuid.uuid4()
    async with stack.pool.connection() as conn:
        await conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Agency')", (org_id,))
        await conn.execute(
            "INSERT INTO approval_routes (org_id, action_type, approver_roles, quorum) "
            "VALUES (%s, 'delete', '{manager}', 2)",
            (org_id,),
        )
    await _member(stack, org_id, owner, "member")
    for manager in (a, b):
        await _member(stack, org_id, manager, "manager")
    token = {u.email: project.token(u.user_id) for u in (owner, a, b, c, outsider)}
    body = {
        "workspace_id": str(owner.workspace_id),
        "org_id": str(org_id),
        "title": "Tidy the specs",
        "steps": GATED_PLAN["steps"],
    }
    # Someone outside the organization cannot put work in it.
    foreign = {**body, "workspace_id": str(outsider.workspace_id)}
    refused = await call(stack, "POST", "/v1/jobs", token[outsider.email], foreign)
    assert refused.status_code == 422, refused.text
    started = await call(stack, "POST", "/v1/jobs", token[owner.email], body)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    job = await eventually(
        lambda: _waiting(stack, f"/v1/jobs/{job_id}", token[owner.email]), timeout=60,
        what="the job waits for approval",
    )  # fmt: skip
    approval_id = job["approvals"][0]["id"]
    path = f"/v1/approvals/{approval_id}"
    assert job["approvals"][0]["quorum"] == 2

    # The owner may read it, not decide it; the outsider may not even see it.
    answer = await call(
        stack, "POST", f"{path}/decision", token[owner.email], {"decision": "approve"}
    )
    assert answer.status_code == 409 and "not an approver" in answer.text
    for method, suffix, sent in (("GET", "", None), ("POST", "/decision", {"decision": "reject"})):
        answer = await call(stack, method, f"{path}{suffix}", token[outsider.email], sent)
        assert answer.status_code == 404, answer.text

    approve = {"decision": "approve", "note": "fine"}
    first = await call(stack, "POST", f"{path}/decision", token[a.email], approve)
    assert first.status_code == 200, first.text
    view = first.json()
    assert view["status"] == "pending"
    assert [(v["voter"], v["decision"], v["channel"]) for v in view["votes"]] == [
        (a.email, "approve", "app")
    ]
    again = await call(stack, "POST", f"{path}/decision", token[a.email], approve)
    assert again.status_code == 409 and "already voted" in again.text

    # b hands the decision to c, who joined after the request went out.
    await _member(stack, org_id, c, "manager")
    to_self = await call(
        stack, "POST", f"{path}/delegation", token[b.email], {"delegate_to": b.email}
    )
    assert to_self.status_code == 409 and "themselves" in to_self.text
    to_outsider = {"delegate_to": outsider.email}
    answer = await call(stack, "POST", f"{path}/delegation", token[b.email], to_outsider)
    assert answer.status_code == 409, answer.text
    bad = await call(stack, "POST", f"{path}/delegation", token[b.email], {"delegate_to": "bob"})
    assert bad.status_code == 422
    handed = await call(
        stack, "POST", f"{path}/delegation", token[b.email], {"delegate_to": c.email}
    )
    assert handed.status_code == 200, handed.text
    late = await call(stack, "POST", f"{path}/decision", token[b.email], {"decision": "reject"})
    assert late.status_code == 409 and "not an approver" in late.text
    done = await call(stack, "POST", f"{path}/decision", token[c.email], approve)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "approved"
    assert [v["voter"] for v in done.json()["votes"]] == [a.email, c.email]


async def _waiting(stack: Any, path: str, token: str) -> dict[str, Any] | None:
    job = await _get(stack, path, token)
    return job if job["status"] == "waiting_approval" and job["approvals"] else None


async def test_the_owner_decides_their_solo_job_whatever_their_profile_address(
    api_stack: Any,
) -> None:
    stack, project = api_stack
    owner = await app_user(stack, with_key=False)
    profile_address = f"inbox-{uuid.uuid4().hex[:8]}@example.com"
    async with stack.pool.connection() as conn:  # emails go to the profile's address
        await conn.execute(
            "UPDATE profiles SET email_address = %s WHERE id = %s",
            (profile_address, owner.user_id),
        )
    token = project.token(owner.user_id)
    body = {
        "workspace_id": str(owner.workspace_id),
        "title": "Tidy the specs",
        "steps": GATED_PLAN["steps"],
    }
    started = await call(stack, "POST", "/v1/jobs", token, body)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    job = await eventually(
        lambda: _waiting(stack, f"/v1/jobs/{job_id}", token), timeout=60, what="waiting"
    )
    approval = job["approvals"][0]
    assert approval["approver_email"] == profile_address
    decided = await call(
        stack, "POST", f"/v1/approvals/{approval['id']}/decision", token, {"decision": "approve"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["decided_by"] == profile_address
