"""What an agent job takes and gives: its request, added steps, result and progress."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from workflows.models.approval import ApprovalPolicy
from workflows.models.steps import Step, StepResult

MAX_STEPS = 200

JobOutcome = Literal["completed", "failed", "cancelled"]


class AgentJobInput(BaseModel):
    """A job: who it is for, where, what, and the plan of steps."""

    job_id: UUID
    user_id: UUID
    workspace_id: UUID
    org_id: UUID | None = None  # the team the job is for; default: the owner's own
    title: Annotated[str, Field(min_length=1, max_length=200)]
    instruction: Annotated[str, Field(max_length=4000)] = ""
    steps: Annotated[list[Step], Field(max_length=MAX_STEPS)] = []
    approval: ApprovalPolicy = ApprovalPolicy()
    keep_open: bool = False  # wait for add_steps until the finish signal or the idle timeout
    idle_timeout: timedelta = timedelta(hours=1)


class AddStepsRequest(BaseModel):
    """Steps an upstream agent adds to a running job."""

    steps: Annotated[list[Step], Field(min_length=1, max_length=50)]


class AgentJobResult(BaseModel):
    """How the job ended and what each step did."""

    job_id: UUID
    status: JobOutcome
    reason: str | None = None
    steps: list[StepResult]
    warnings: list[str] = []  # what went wrong without changing the outcome (session release)


class JobProgress(BaseModel):
    """The ``progress`` query: where the job is."""

    job_id: UUID
    status: str
    steps_done: int
    steps_planned: int
    waiting_on: str | None
    browser_session_id: str | None
    memories_recalled: int
    steps: list[StepResult]
