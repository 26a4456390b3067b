"""An agency for approval tests: an organization, members with roles, approval routes, and
a job of one of its members waiting at a gate."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.db.factories import insert_user
from tests.harness import Stack
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job, step
from workflows.models.agent_job import AgentJobInput

PAYMENT_STEP = step({"action": "click_mouse", "coordinates": [7, 7]}, "Pay invoice 42", "payment")
DELETE_STEP = step({"action": "click_mouse", "coordinates": [5, 5]}, "Delete 'Old Specs'", "delete")


@dataclass
class Agency:
    """An organization and its members by address."""

    org_id: uuid.UUID
    members: dict[str, uuid.UUID] = field(default_factory=dict)


def tag() -> str:
    """A short unique suffix, so addresses never collide between tests."""
    return uuid.uuid4().hex[:6]


async def make_agency(stack: Stack, members: list[tuple[str, str, bool]]) -> Agency:
    """An organization with ``(address, role, backup_approver)`` members."""
    agency = Agency(org_id=uuid.uuid4())
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO organizations (id, name) VALUES (%s, 'Agency')", (agency.org_id,)
        )
        for email, role, backup in members:
            user = await insert_user(conn, email)
            await conn.execute(
                "INSERT INTO team_members (org_id, user_id, role, backup_approver) "
                "VALUES (%s, %s, %s, %s)",
                (agency.org_id, user, role, backup),
            )
            agency.members[email] = user
    return agency


async def set_route(
    stack: Stack,
    agency: Agency,
    action_type: str,
    roles: list[str],
    quorum: int = 1,
    escalate_after_seconds: int | None = None,
) -> None:
    """The organization's route for ``action_type``."""
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO approval_routes (org_id, action_type, approver_roles, quorum, "
            "escalate_after_seconds) VALUES (%s, %s, %s, %s, %s)",
            (agency.org_id, action_type, roles, quorum, escalate_after_seconds),
        )


async def team_job(
    stack: Stack, agency: Agency, owner: str, risky: Any = PAYMENT_STEP, **fields: Any
) -> tuple[AgentJobInput, Any]:
    """Start a job of ``owner`` (a new plain member) in the agency with one risky step."""
    request = await job_request(stack, [SAFE_STEPS[0], risky], email=owner, **fields)
    request = request.model_copy(update={"org_id": agency.org_id})
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO team_members (org_id, user_id, role) VALUES (%s, %s, 'member')",
            (agency.org_id, request.user_id),
        )
    agency.members[owner] = request.user_id
    return request, await start_job(stack, request)


def links(text: str) -> dict[str, str]:
    """The approve and reject links of an approval email."""
    return dict(re.findall(r"^(Approve|Reject): (\S+)$", text, re.MULTILINE))


def requests_to(stack: Stack) -> list[str]:
    """Everyone an approval request email went to, in the order sent (once each)."""
    seen: list[str] = []
    for email in stack.emulators.resend.sent_emails():
        key = email.get("idempotency_key") or ""
        if key.startswith("approval-request/"):
            seen.extend(a for a in email["to"] if a not in seen)
    return seen
