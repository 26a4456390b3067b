"""What makes a row the app inserted a workflow's input, and what makes it invalid.

A row that cannot become a workflow (an unknown model, no stored key, a plan that does
not validate, a batch that never completed) is refused with one readable line, which
the dispatcher writes to its ``error_message`` as it ends the row ``failed``: the app
shows it, and the row never comes back.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.higgsfield_client import APPLICATIONS
from db.dispatch import NewGeneration, NewJob
from workers.settings import Settings
from workflows.models.agent_job import MAX_STEPS, AgentJobInput
from workflows.models.approval import ApprovalPolicy
from workflows.models.generation import GenerationInput
from workflows.models.generation_batch import BatchPrompt, GenerationBatchInput
from workflows.models.steps import Step

MAX_ERROR = 500
MAX_BATCH = 5  # seed 003: five variations, prompt_index 0-4
# A full Higgsfield endpoint id (``owner/model/variant``), as higgsfield_client sends it.
_ENDPOINT_ID = re.compile(r"[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9._-]*){1,4}")


class Invalid(Exception):
    """The row cannot become a workflow; the message is what the app shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message[:MAX_ERROR])


class JobPlan(BaseModel):
    """``jobs.plan``: the steps the assistant takes, and what a rejection means."""

    model_config = ConfigDict(extra="forbid")
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    on_rejection: Literal["stop", "skip"] = "stop"


def job_input(row: NewJob, settings: Settings) -> AgentJobInput:
    """The AgentJob input of a new job row; ``Invalid`` says why there is none."""
    if row.user_id is None:
        raise Invalid("the job has no user_id")
    if row.workspace_id is None:
        raise Invalid("the job has no workspace_id: name one of your workspaces")
    if row.workspace_owner != row.user_id:
        raise Invalid(f"workspace {row.workspace_id} is not one of your workspaces")
    if not row.workspace_active:
        raise Invalid(f"workspace {row.workspace_id} is not active")
    if not (row.title or "").strip():
        raise Invalid("the job has no title")
    if row.plan is None:
        raise Invalid('the job has no plan: set plan to {"steps": [...]}')
    try:
        plan = JobPlan.model_validate(row.plan)
    except ValidationError as exc:
        raise Invalid(f"invalid plan: {first_error(exc)}") from None
    try:
        return AgentJobInput(
            job_id=row.id,
            user_id=row.user_id,
            workspace_id=row.workspace_id,
            title=(row.title or "").strip(),
            instruction=row.instruction or "",
            steps=plan.steps,
            approval=ApprovalPolicy(
                reminder_after=settings.approval_reminder_after,
                expires_after=settings.approval_expires_after,
                escalate_after=settings.approval_escalate_after,
                on_rejection=plan.on_rejection,
            ),
        )
    except ValidationError as exc:
        raise Invalid(f"invalid job: {first_error(exc)}") from None


def generation_input(row: NewGeneration, settings: Settings) -> GenerationInput:
    """The Generation input of a new (single) generation row; ``Invalid`` says why not."""
    if row.batch_id is not None and row.batch_size is None:
        raise Invalid("a row with batch_id needs batch_size: how many rows the batch has")
    try:
        return GenerationInput(
            generation_id=row.id,
            user_id=row.user_id,
            prompt_id=row.prompt_id,
            prompt_text=prompt_text(row),
            model=model(row.model),
            settings=settings_of(row),
            deadline=settings.generation_deadline,
            batch_id=row.batch_id,
        )
    except ValidationError as exc:
        raise Invalid(f"invalid generation: {first_error(exc)}") from None


def batch_input(rows: list[NewGeneration]) -> GenerationBatchInput:
    """The GenerationBatch input of a complete batch's rows (in prompt order); ``Invalid``
    says why the batch cannot start (for every row of it)."""
    first = rows[0]
    assert first.batch_id is not None and first.batch_size is not None
    problems = [f"{r.id}: {why}" for r in rows if (why := problem(r)) is not None]
    if problems:
        raise Invalid(f"batch {first.batch_id} has an invalid variation: {problems[0]}")
    if len({r.model for r in rows}) > 1:
        raise Invalid(f"the variations of batch {first.batch_id} name different models")
    if len({repr(sorted(settings_of(r).items())) for r in rows}) > 1:
        raise Invalid(f"the variations of batch {first.batch_id} have different settings")
    try:
        return GenerationBatchInput(
            batch_id=first.batch_id,
            user_id=first.user_id,
            prompts=[
                BatchPrompt(generation_id=r.id, prompt_id=r.prompt_id, prompt_text=prompt_text(r))
                for r in rows
            ],
            model=model(first.model),
            settings=settings_of(first),
        )
    except ValidationError as exc:
        raise Invalid(f"invalid batch: {first_error(exc)}") from None


def batch_incomplete(rows: list[NewGeneration]) -> str | None:
    """Why the rows of a batch are not (yet) one complete batch; None if they are."""
    sizes = {r.batch_size for r in rows}
    first = rows[0]
    if len(sizes) > 1:
        return f"the rows of batch {first.batch_id} name different batch sizes"
    size = first.batch_size or 0
    if len(rows) > size:
        return f"batch {first.batch_id} has {len(rows)} rows but batch_size {size}"
    if len(rows) < size:
        return f"batch {first.batch_id} has {len(rows)} of its {size} rows"
    return None


def problem(row: NewGeneration) -> str | None:
    """Why a generation row is invalid, or None."""
    try:
        prompt_text(row), model(row.model), settings_of(row)
    except Invalid as exc:
        return str(exc)
    return None


def prompt_text(row: NewGeneration) -> str:
    """The prompt the generation sends: its own text, else its stored prompt's."""
    if not row.has_key:
        raise Invalid(
            "you have no Higgsfield key stored: add one (user_api_keys, service higgsfield)"
        )
    if row.prompt_id is not None and row.stored_prompt_text is None:
        raise Invalid(f"prompt {row.prompt_id} is not one of your prompts")
    text = row.prompt_text.strip() or (row.stored_prompt_text or "").strip()
    if not text:
        raise Invalid("the generation has no prompt text")
    if len(text) > 4000:
        raise Invalid("the prompt text is longer than 4000 characters")
    return text


def model(name: str) -> str:
    """The model name if Higgsfield knows it by that name or it is an endpoint id."""
    if name in APPLICATIONS or _ENDPOINT_ID.fullmatch(name):
        return name
    known = ", ".join(sorted(APPLICATIONS))
    shown = name[:60]
    raise Invalid(f"unknown model {shown!r}: use one of {known}, or a Higgsfield endpoint id")


def settings_of(row: NewGeneration) -> dict[str, object]:
    """The generation's settings: a JSON object."""
    if not isinstance(row.settings, dict):
        raise Invalid("settings must be a JSON object")
    return row.settings


def first_error(exc: ValidationError) -> str:
    """The first error of a validation, as ``where: what``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def batch_workflow_id(batch_id: UUID) -> str:
    """The workflow id of a batch: ``generation-batch-<batch_id>``."""
    return f"generation-batch-{batch_id}"


def generation_workflow_id(generation_id: UUID) -> str:
    """The workflow id of a generation: ``generation-<generations.id>``."""
    return f"generation-{generation_id}"
