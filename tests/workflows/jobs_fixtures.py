"""Users, workspaces and job requests for workflow tests."""

from __future__ import annotations

import uuid
from typing import Any

from tests.db.factories import insert_user, insert_workspace
from tests.harness import Stack
from workers.starters import start_agent_job
from workflows.models.agent_job import AgentJobInput
from workflows.models.approval import ApprovalPolicy
from workflows.models.steps import Step

APPROVER = "owner@example.com"


def step(action: dict[str, Any], description: str, risk: str = "none") -> Step:
    """A plan step from plain data."""
    return Step.model_validate({"action": action, "description": description, "risk": risk})


SAFE_STEPS = [
    step({"action": "navigate", "url": "https://notion.so/specs"}, "Open the specs space"),
    step({"action": "click_mouse", "coordinates": [10, 20]}, "Select the draft"),
    step({"action": "type_text", "text": "Q3 spec"}, "Rename the draft"),
]
DELETE_STEP = step({"action": "click_mouse", "coordinates": [5, 5]}, "Delete 'Old Specs'", "delete")


async def job_request(
    stack: Stack, steps: list[Step], *, email: str | None = None, **fields: Any
) -> AgentJobInput:
    """A job for a new user with a Notion workspace."""
    async with stack.pool.connection() as conn:
        user_id = await insert_user(conn, email or f"owner-{uuid.uuid4().hex[:8]}@example.com")
        workspace_id = await insert_workspace(conn, user_id)
    return AgentJobInput(
        job_id=uuid.uuid4(),
        user_id=user_id,
        workspace_id=workspace_id,
        title="Tidy the specs",
        instruction="Rename the draft and remove old specs",
        steps=steps,
        approval=fields.pop("approval", ApprovalPolicy()),
        **fields,
    )


async def start_job(stack: Stack, request: AgentJobInput) -> Any:
    """Start the job on the stack's task queue; returns the handle."""
    return await start_agent_job(stack.client, stack.settings, request)
