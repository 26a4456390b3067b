"""A gate that cannot run to a decision closes its row with the reason, and the job says
why: the request email refused, no approver to ask, the email's deadline passed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workflows.models.approval import ApprovalPolicy

STEPS = [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[1]]


async def _failed_job(stack: Stack, handle: Any, job_id: object) -> dict[str, Any]:
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    job = await stack.fetchrow("SELECT status, error_message FROM jobs WHERE id = %s", job_id)
    assert job is not None and job["status"] == "failed"
    steps = await stack.fetchall(
        "SELECT status, error FROM job_steps WHERE job_id = %s ORDER BY step_index", job_id
    )
    assert [s["status"] for s in steps] == ["completed", "skipped", "skipped"]
    assert all("job failed" in s["error"] for s in steps[1:])
    return job


async def test_refused_request_email_cancels_the_gate_and_fails_the_job(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.resend.faults.fail_next(1, status=422, path_prefix="/emails")
        request = await job_request(stack, STEPS)
        handle = await start_job(stack, request)
        job = await _failed_job(stack, handle, request.job_id)
        await record_history(handle, "agent_job_gate_failed")

        approval = await approval_row(stack, request.job_id)
        assert approval["status"] == "cancelled" and approval["decided_at"] is not None
        assert "could not be sent" in approval["decision_note"]
        assert "Resend refused the email (422" in approval["decision_note"]
        assert approval["decision_note"] in job["error_message"]
        assert "Delete 'Old Specs'" in job["error_message"]
        assert stack.emulators.steel.released_ids() == [
            s["id"] for s in stack.emulators.steel.sessions()
        ]


async def test_gate_without_an_approver_is_cancelled_with_the_reason(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, STEPS)
        await stack.fetchrow(
            "UPDATE profiles SET email_address = NULL WHERE id = %s RETURNING id", request.user_id
        )
        handle = await start_job(stack, request)
        job = await _failed_job(stack, handle, request.job_id)

        approval = await approval_row(stack, request.job_id)
        assert approval["status"] == "cancelled"
        assert "no approver" in approval["decision_note"]
        assert approval["decision_note"] in job["error_message"]
        assert stack.emulators.resend.sent_emails() == []


async def test_email_deadline_expires_the_gate(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        stack.emulators.resend.faults.error_rate = 1.0  # every send: 503, retried
        policy = ApprovalPolicy(
            reminder_after=timedelta(minutes=5), expires_after=timedelta(minutes=10)
        )
        request = await job_request(stack, STEPS, approval=policy)
        handle = await start_job(stack, request)
        job = await _failed_job(stack, handle, request.job_id)  # time skips over the retries

        approval = await approval_row(stack, request.job_id)
        assert approval["status"] == "expired"
        assert "could not be sent before" in approval["decision_note"]
        assert approval["decision_note"] in job["error_message"]
        transitions = await stack.fetchall(
            "SELECT to_status, reason FROM status_transitions WHERE entity_id = %s ORDER BY id",
            approval["id"],
        )
        assert [t["to_status"] for t in transitions] == ["pending", "expired"]
        assert transitions[1]["reason"] == approval["decision_note"]
