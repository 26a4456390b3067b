"""Approval decisions by link, by the Temporal update (UI) and by the CLI; delivery events."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_email, approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workflows.models.approval import ApprovalDecisionInput, ApprovalDecisionResult

STEPS = [SAFE_STEPS[0], DELETE_STEP]


def _links(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(Approve|Reject): (\S+)$", text, re.MULTILINE))


async def test_link_get_shows_a_page_and_only_post_decides(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, STEPS, email="kim@example.com")
        handle = await start_job(stack, request)
        links = _links((await approval_email(stack, "kim@example.com"))["text"])
        async with httpx.AsyncClient() as http:
            page = await http.get(links["Reject"])  # what a mail scanner does
            assert page.status_code == 200 and "Confirm: reject" in page.text
            assert (await approval_row(stack, request.job_id))["status"] == "pending"
            decided = await http.post(links["Reject"], data={"note": "not today"})
            assert decided.status_code == 200 and "rejected" in decided.text
            again = await http.post(links["Approve"])
            assert again.status_code == 409
        assert (await handle.result()).status == "cancelled"
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decision_channel"], row["decision_note"]) == (
            "rejected",
            "link",
            "not today",
        )
        async with httpx.AsyncClient() as http:
            tampered = links["Approve"][:-3] + "aaa"
            assert (await http.get(tampered)).status_code == 403


async def test_operator_decides_with_the_update_and_a_duplicate_is_refused(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, STEPS, email="lee@example.com")
        handle = await start_job(stack, request)
        row = await approval_row(stack, request.job_id)
        state = await eventually(lambda: handle.query("approval_state"), what="gate state")
        assert state[0]["status"] == "pending"
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await handle.execute_update(
                "decide_approval",
                ApprovalDecisionInput(
                    approval_id=uuid.uuid4(), decision="approve", decided_by="ops@agency"
                ),
            )
        assert "is not open in this workflow" in str(unknown.value.cause)
        result = await handle.execute_update(
            "decide_approval",
            ApprovalDecisionInput(
                approval_id=row["id"], decision="approve", decided_by="ops@agency", note="ok"
            ),
            result_type=ApprovalDecisionResult,
        )
        assert result.status == "approved"
        with pytest.raises(WorkflowUpdateFailedError) as duplicate:
            await handle.execute_update(
                "decide_approval",
                ApprovalDecisionInput(
                    approval_id=row["id"], decision="reject", decided_by="someone@else"
                ),
            )
        assert "already approved" in str(duplicate.value.cause)
        assert (await handle.result()).status == "completed"
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decided_by"], row["decision_channel"]) == (
            "approved",
            "ops@agency",
            "ui",
        )


async def test_signal_decides_like_the_update(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, STEPS, email="max@example.com")
        handle = await start_job(stack, request)
        row = await approval_row(stack, request.job_id)
        await handle.signal(
            "decide_approval_signal",
            ApprovalDecisionInput(approval_id=row["id"], decision="reject", decided_by="ops"),
        )
        assert (await handle.result()).status == "cancelled"


async def test_bounce_is_recorded_and_the_gate_stays_open(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, STEPS, email="nia@example.com")
        handle = await start_job(stack, request)
        sent = await approval_email(stack, "nia@example.com")
        status = await asyncio.to_thread(
            stack.emulators.resend.deliver_event, "email.bounced", sent["id"]
        )
        assert status == 200
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["delivery_status"]) == ("pending", "bounced")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await approval_row(stack, request.job_id))["status"] == "cancelled"
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
        assert job == {"status": "cancelled"}
        assert len(stack.emulators.steel.released_ids()) == 1


async def test_bounce_before_the_email_id_is_recorded_still_reaches_its_gate(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        # The send succeeds, but reading Resend's Message-ID back fails for a while: the
        # approval row does not know the email's id when the bounce arrives.
        stack.emulators.resend.faults.fail_next(3, status=503, path_prefix="/emails/")
        request = await job_request(stack, STEPS, email="ona@example.com")
        handle = await start_job(stack, request)
        sent = await approval_email(stack, "ona@example.com")
        assert (await approval_row(stack, request.job_id))["resend_message_id"] is None
        status = await asyncio.to_thread(
            stack.emulators.resend.deliver_event, "email.bounced", sent["id"]
        )
        assert status == 200
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["delivery_status"]) == ("pending", "bounced")
        assert row["resend_message_id"] is None  # found by the approval's tag

        async def recorded() -> dict[str, object] | None:
            found = await approval_row(stack, request.job_id)
            return found if found["resend_message_id"] else None

        row = await eventually(recorded, what="the email's id recorded", timeout=40)
        assert (row["resend_message_id"], row["delivery_status"]) == (sent["id"], "bounced")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()


async def test_cancel_while_the_request_email_is_retried_closes_the_gate(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.resend.faults.fail_next(50, status=503, path_prefix="/emails")
        request = await job_request(stack, STEPS, email="pia@example.com")
        handle = await start_job(stack, request)
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "cancelled" and row["decided_at"] is not None
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
        assert job == {"status": "cancelled"}
        assert stack.emulators.resend.sent_emails() == []
