"""What approval gates take and give: policies, requests, decisions, outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

Decision = Literal["approve", "reject"]
DecisionChannel = Literal["email", "link", "ui", "cli", "app"]


class ApprovalPolicy(BaseModel):
    """How a workflow's gates behave; filled in by whoever starts the workflow."""

    reminder_after: timedelta = timedelta(hours=24)
    expires_after: timedelta = timedelta(hours=72)
    on_rejection: Literal["stop", "skip"] = "stop"
    approver_email: str | None = None  # default: the job owner's profiles.email_address
    # Escalate an undecided request to the next approvers (backups, then admins) after
    # this long, and again after as long; the organization's route may set its own.
    escalate_after: timedelta | None = None


class ApprovalRequest(BaseModel):
    """One gate to open."""

    job_id: UUID
    action_type: str
    description: str
    screenshot_blob_id: UUID | None = None
    step_index: int | None = None


class ApprovalDecisionInput(BaseModel):
    """A decision, as the webhook, a link, the CLI or an operator in the UI sends it.

    In the Temporal UI: Update ``decide_approval`` (or Signal ``decide_approval_signal``)
    with ``{"approval_id": "<uuid>", "decision": "approve", "decided_by": "you@example.com",
    "channel": "ui", "note": "optional"}``.
    """

    approval_id: UUID
    decision: Decision
    decided_by: Annotated[str, Field(min_length=1, max_length=320)]
    channel: DecisionChannel = "ui"
    note: Annotated[str | None, Field(max_length=2000)] = None


class ApprovalDecisionResult(BaseModel):
    """The gate's status after the decision."""

    approval_id: UUID
    status: str
    decided_at: datetime | None = None
    approvals: int | None = None  # distinct approvals so far, of ``quorum``
    quorum: int | None = None


class DelegationInput(BaseModel):
    """An approver hands their decision to a colleague of the organization (by reply,
    the app or the Temporal UI: Update ``delegate_approval``)."""

    approval_id: UUID
    delegated_by: Annotated[str, Field(min_length=3, max_length=320)]
    delegate_to: Annotated[str, Field(min_length=3, max_length=320)]
    channel: DecisionChannel = "ui"


class DelegationResult(BaseModel):
    """Who decides in the delegator's place."""

    approval_id: UUID
    delegate_to: str
    seat: int


class DeliveryProblem(BaseModel):
    """A request email bounced or was marked as spam (Signal ``approval_delivery_failed``)."""

    approval_id: UUID
    email: str
    status: Literal["bounced", "complained"]


class GateOutcome(BaseModel):
    """How a gate ended."""

    approval_id: UUID
    status: Literal["approved", "rejected", "expired", "cancelled"]
    decided_by: str | None = None
    note: str | None = None

    @property
    def approved(self) -> bool:
        """True only for an approval; expiry counts as a rejection."""
        return self.status == "approved"


class GateState(BaseModel):
    """What a gate waits on (the ``approval_state`` query)."""

    approval_id: UUID
    description: str
    opened_at: datetime
    expires_at: datetime
    status: str
    approvals: int = 0  # distinct approvals so far
    quorum: int = 1
    approvers: list[str] = []  # who may vote now
    escalations: int = 0

    @property
    def progress(self) -> str:
        """ "1 of 2 approvals"."""
        return f"{self.approvals} of {self.quorum} approval{'s' if self.quorum > 1 else ''}"
