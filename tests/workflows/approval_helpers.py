"""Finding approval emails and answering them through the Resend emulator."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowHandle

from tests.harness import Stack
from tests.waiting import eventually
from tests.workflows.jobs_fixtures import job_request, start_job
from workflows.models.agent_job import AgentJobInput
from workflows.models.steps import Step


async def approval_email(stack: Stack, to: str, kind: str = "request") -> dict[str, Any]:
    """The approval email of ``kind`` sent to ``to`` (waits for it)."""

    def find() -> dict[str, Any] | None:
        for email in stack.emulators.resend.sent_emails():
            key = email.get("idempotency_key") or ""
            if to in email["to"] and key.startswith(f"approval-{kind}/"):
                return email
        return None

    return await eventually(find, what=f"approval {kind} email to {to}")


async def waiting_job(
    stack: Stack, steps: list[Step], email: str, **fields: Any
) -> tuple[AgentJobInput, WorkflowHandle[Any, Any], dict[str, Any]]:
    """Start a job for ``email`` and wait for its approval request email."""
    request = await job_request(stack, steps, email=email, **fields)
    handle = await start_job(stack, request)
    return request, handle, await approval_email(stack, email)


async def reply(stack: Stack, email_id: str, text: str, **kwargs: Any) -> str:
    """Reply to a sent email through the emulator (which posts the signed webhook)."""
    before = len(stack.emulators.resend.deliveries())
    reply_id = await asyncio.to_thread(
        stack.emulators.resend.reply_to_email, email_id, text, **kwargs
    )
    await eventually(
        lambda: len(stack.emulators.resend.deliveries()) > before, what="webhook delivery"
    )
    return reply_id


def last_delivery(stack: Stack) -> dict[str, Any]:
    """The last webhook delivery attempt (status and response)."""
    return stack.emulators.resend.deliveries()[-1]


async def approval_row(stack: Stack, job_id: object) -> dict[str, Any]:
    """The job's latest approval row (waits for one)."""

    async def find() -> dict[str, Any] | None:
        return await stack.fetchrow(
            "SELECT * FROM approvals WHERE job_id = %s ORDER BY created_at DESC LIMIT 1", job_id
        )

    return await eventually(find, what="approval row")
