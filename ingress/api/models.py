"""Bodies and answers of the HTTP API (``/v1``); the OpenAPI schema is made from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.dispatch.rules import MAX_BATCH
from workflows.models.agent_job import MAX_STEPS
from workflows.models.steps import Step

_STRICT = ConfigDict(extra="forbid")
Model = Annotated[str, Field(min_length=1, max_length=200)]
PromptText = Annotated[str, Field(min_length=1, max_length=4000)]


class StartJob(BaseModel):
    """A job for the signed-in user in one of their workspaces."""

    model_config = _STRICT
    workspace_id: UUID
    # The team the job belongs to (one of the user's organizations); default: their own.
    org_id: UUID | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)]
    instruction: Annotated[str, Field(max_length=4000)] = ""
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    on_rejection: Literal["stop", "skip"] = "stop"


class Variation(BaseModel):
    """One prompt: a text, or one of the user's stored prompts."""

    model_config = _STRICT
    prompt_text: PromptText | None = None
    prompt_id: UUID | None = None

    @model_validator(mode="after")
    def _one_prompt(self) -> Variation:
        if self.prompt_text is None and self.prompt_id is None:
            raise ValueError("give prompt_text or prompt_id")
        return self


class StartGeneration(Variation):
    """One image from one prompt."""

    model: Model = "soul"
    settings: dict[str, Any] = {}
    org_id: UUID | None = None  # one of the user's organizations; default: their own


class StartBatch(BaseModel):
    """Up to five variations of a prompt (seed 003), generated as one batch."""

    model_config = _STRICT
    prompts: Annotated[list[Variation], Field(min_length=1, max_length=MAX_BATCH)]
    model: Model = "soul"
    settings: dict[str, Any] = {}


class Decide(BaseModel):
    """A decision on an approval gate, made in the app."""

    model_config = _STRICT
    decision: Literal["approve", "reject"]
    note: Annotated[str | None, Field(max_length=2000)] = None


class Delegate(BaseModel):
    """Hand your decision on an approval to a colleague of the organization."""

    model_config = _STRICT
    delegate_to: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class VoteView(BaseModel):
    """One approver's vote on an approval."""

    voter: str
    decision: str
    channel: str
    note: str | None
    voted_at: datetime


class StepView(BaseModel):
    """A step of a job's plan and how it went."""

    step_index: int
    description: str
    risk: str
    status: str
    error: str | None


class ApprovalView(BaseModel):
    """An approval gate: what waits for a decision, and the decision."""

    id: UUID
    job_id: UUID | None
    action_type: str | None
    description: str | None
    status: str
    approver_email: str | None
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_channel: str | None
    decision_note: str | None
    org_id: UUID | None = None
    quorum: int = 1  # distinct approvals that decide it
    votes: list[VoteView] = []


class JobView(BaseModel):
    """A job, its steps and its approvals."""

    id: UUID
    status: str
    title: str | None
    instruction: str | None
    workspace_id: UUID | None
    workflow_id: str | None
    error_message: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancel_requested_at: datetime | None
    steps: list[StepView]
    approvals: list[ApprovalView]


class GenerationView(BaseModel):
    """A generation; poll it until its status is completed, failed, nsfw or cancelled."""

    id: UUID
    status: str
    prompt_id: UUID | None
    prompt_text: str
    model: str
    batch_id: UUID | None
    workflow_id: str | None
    result_urls: list[str]
    saved_asset_ids: list[UUID]
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None
    cancel_requested_at: datetime | None


class BatchView(BaseModel):
    """A batch's generations, in prompt order."""

    batch_id: UUID
    workflow_id: str
    generations: list[GenerationView]
