"""Approval tokens are bound to one approval and one approver, and are single-use: after a
decision, after the token's expiry or after the gate's expiry, links and replies change
nothing. (Replies from others, tampered reply tokens and replies after expiry are proved
in tests/workflows/test_approval_*.py.)"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from activities import approval_tokens
from activities.approval_tokens import Purpose
from tests.harness import Stack, running_stack
from tests.security import links_in
from tests.workflows.approval_helpers import approval_row, last_delivery, reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workers.keys import Keyring, Use
from workflows.models.approval import ApprovalPolicy

STEPS = [SAFE_STEPS[0], DELETE_STEP]


def _token(link: str) -> str:
    return link.rsplit("/", 1)[1]


def _moved_to(token: str, approval_id: Any) -> str:
    """The token with its approval id replaced (its MAC kept)."""
    raw = bytearray(base64.b32decode(token.upper() + "=" * (-len(token) % 8)))
    raw[1:17] = approval_id.bytes
    return base64.b32encode(bytes(raw)).decode().rstrip("=").lower()


async def _transitions(stack: Stack, approval_id: Any) -> list[str]:
    rows = await stack.fetchall(
        "SELECT to_status FROM status_transitions WHERE entity_id = %s ORDER BY id", approval_id
    )
    return [r["to_status"] for r in rows]


def _secret(stack: Stack) -> str:
    return Keyring.from_settings(stack.settings).signing_keys(Use.APPROVAL_TOKENS).current


async def test_a_token_decides_only_its_own_approval(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        # One approver, two jobs: the same person holds valid tokens for both gates.
        a_req, a_job, a_sent = await waiting_job(stack, STEPS, "same@example.com")
        a_row = await approval_row(stack, a_req.job_id)
        policy = ApprovalPolicy(approver_email="same@example.com")
        b_req = await job_request(stack, STEPS, approval=policy)
        b_job = await start_job(stack, b_req)
        b_row = await approval_row(stack, b_req.job_id)
        assert b_row["approver_email"] == "same@example.com"

        a_approve = _token(links_in(a_sent["text"])["Approve"])
        moved_token = _moved_to(a_approve, b_row["id"])
        # The moved token is well formed and names B's approval with A's purpose and expiry,
        # so the 403 below comes from its MAC (bound to A's approval), not from a bad token.
        a_content = approval_tokens.peek(a_approve)
        assert a_content.approval_id == a_row["id"]
        assert approval_tokens.peek(moved_token) == replace(a_content, approval_id=b_row["id"])
        async with httpx.AsyncClient(base_url=stack.ingress_url) as http:
            moved = await http.post(f"/approvals/{moved_token}")
            assert moved.status_code == 403
        await reply(stack, a_sent["id"], "Approve")
        assert (await a_job.result()).status == "completed"
        assert (await approval_row(stack, a_req.job_id))["status"] == "approved"
        assert (await approval_row(stack, b_req.job_id))["status"] == "pending"
        assert [g["status"] for g in await b_job.query("approval_state")] == ["pending"]
        await b_job.cancel()


async def test_after_a_decision_no_link_reply_or_update_changes_anything(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "once@example.com")
        links = links_in(sent["text"])
        async with httpx.AsyncClient() as http:
            first = await http.post(links["Approve"], data={"note": "first"})
            assert first.status_code == 200
            assert (await handle.result()).status == "completed"
            again = await http.post(links["Approve"], data={"note": "second"})
            other = await http.post(links["Reject"], data={"note": "changed my mind"})
            page = await http.get(links["Reject"])
        assert (again.status_code, other.status_code, page.status_code) == (409, 409, 409)
        await reply(stack, sent["id"], "Reject\nno")
        assert last_delivery(stack)["status"] == 200
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decision_channel"], row["decision_note"]) == (
            "approved",
            "link",
            "first",
        )
        assert await _transitions(stack, row["id"]) == ["pending", "approved"]
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
        assert job == {"status": "completed"}


async def test_an_expired_link_token_changes_nothing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, _ = await waiting_job(stack, STEPS, "late@example.com")
        row = await approval_row(stack, request.job_id)
        past = datetime.now(UTC) - timedelta(seconds=1)
        expired = approval_tokens.sign(
            _secret(stack), row["id"], "late@example.com", Purpose.APPROVE_LINK, past
        )
        async with httpx.AsyncClient(base_url=stack.ingress_url) as http:
            assert (await http.get(f"/approvals/{expired}")).status_code == 403
            posted = await http.post(f"/approvals/{expired}", data={"note": "too late"})
        assert posted.status_code == 403 and "expired" in posted.text
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        assert [g["status"] for g in await handle.query("approval_state")] == ["pending"]
        assert await _transitions(stack, row["id"]) == ["pending"]
        await handle.cancel()


async def test_links_after_the_gate_expired_change_nothing(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        policy = ApprovalPolicy(reminder_after=timedelta(hours=1), expires_after=timedelta(hours=2))
        request, handle, sent = await waiting_job(stack, STEPS, "gone@example.com", approval=policy)
        assert (await handle.result()).status == "cancelled"  # time skips past the deadline
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "expired"
        # Link tokens outlive a gate: freshly signed ones must still change nothing.
        later = datetime.now(UTC) + timedelta(days=7)
        fresh = approval_tokens.sign(
            _secret(stack), row["id"], "gone@example.com", Purpose.APPROVE_LINK, later
        )
        links = [*links_in(sent["text"]).values(), f"{stack.ingress_url}/approvals/{fresh}"]
        async with httpx.AsyncClient() as http:
            for link in links:
                assert (await http.post(link)).status_code == 409
                assert (await http.get(link)).status_code == 409
        assert (await approval_row(stack, request.job_id))["status"] == "expired"
        assert await _transitions(stack, row["id"]) == ["pending", "expired"]
