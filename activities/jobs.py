"""Database transitions of agent jobs and their steps (local activities)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import transition_context
from db import jobs
from db.pool import Pool
from workflows.models.steps import Step, StepResult


class CreateJobInput(BaseModel):
    """A job to persist before anything runs."""

    job_id: UUID
    user_id: UUID
    workspace_id: UUID
    title: str
    instruction: str
    steps: list[Step]
    org_id: UUID | None = None  # default: the owner's organization of one


class JobStarted(BaseModel):
    """What the workflow needs to know of the job's workspace."""

    platform: str
    browser_settings: dict[str, Any]


class AddStepsInput(BaseModel):
    """Steps appended to a running job, numbered from ``first_index``."""

    job_id: UUID
    first_index: int
    steps: list[Step]


class FinishJobInput(BaseModel):
    """How the job ended."""

    job_id: UUID
    status: Literal["completed", "failed", "cancelled"]
    reason: str | None = None
    result: dict[str, Any] | None = None


class StepRecordInput(BaseModel):
    """A step that ends without running (skipped after a rejection)."""

    job_id: UUID
    result: StepResult


class SessionReservation(BaseModel):
    """The browser session id a job uses."""

    job_id: UUID
    session_id: str
    replace: bool = False


class JobActivities:
    """Job and step rows: create, progress, finish."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def create_job(self, request: CreateJobInput) -> JobStarted:
        """Insert the job and its planned steps, then mark it running."""
        async with self.pool.connection() as conn, conn.transaction():
            ctx = await jobs.job_context(conn, request.user_id, request.workspace_id)
            if ctx is None:
                raise ApplicationError(
                    f"user {request.user_id} has no profile", type="InvalidJob", non_retryable=True
                )
            if ctx.workspace_id is None or not ctx.is_active:
                raise ApplicationError(
                    f"workspace {request.workspace_id} is not an active workspace of user "
                    f"{request.user_id}",
                    type="InvalidJob",
                    non_retryable=True,
                )
            if request.org_id is not None and not await jobs.is_org_member(
                conn, request.org_id, request.user_id
            ):
                raise ApplicationError(
                    f"user {request.user_id} is not a member of organization {request.org_id}",
                    type="InvalidJob",
                    non_retryable=True,
                )
            await jobs.insert_job(
                conn,
                org_id=request.org_id,
                job_id=request.job_id,
                user_id=request.user_id,
                workspace_id=request.workspace_id,
                workflow_id=activity.info().workflow_id or "",
                title=request.title,
                instruction=request.instruction,
            )
            await jobs.insert_steps(conn, request.job_id, 0, _planned(request.steps))
            await jobs.mark_job_running(conn, request.job_id, transition_context("job started"))
        return JobStarted(
            platform=str(ctx.platform_name), browser_settings=dict(ctx.browser_settings or {})
        )

    @activity.defn
    async def add_job_steps(self, request: AddStepsInput) -> None:
        """Record steps added while the job runs."""
        async with self.pool.connection() as conn, conn.transaction():
            await jobs.insert_steps(
                conn, request.job_id, request.first_index, _planned(request.steps)
            )

    @activity.defn
    async def skip_step(self, request: StepRecordInput) -> None:
        """Record a step that did not run, and why."""
        async with self.pool.connection() as conn:
            await jobs.finish_step(
                conn,
                request.job_id,
                request.result.step_index,
                status="skipped",
                result=None,
                screenshot_ref=None,
                error=request.result.error,
            )

    @activity.defn
    async def reserve_browser_session(self, request: SessionReservation) -> str:
        """Store the session id before the session exists, so a retry reuses it."""
        async with self.pool.connection() as conn:
            if request.replace:
                await jobs.replace_browser_session(conn, request.job_id, request.session_id)
                return request.session_id
            return await jobs.reserve_browser_session(conn, request.job_id, request.session_id)

    @activity.defn
    async def finish_job(self, request: FinishJobInput) -> None:
        """Move the job to its terminal status and close the steps it left open."""
        reason = request.reason or request.status
        async with self.pool.connection() as conn, conn.transaction():
            ctx = transition_context(reason)
            if request.status == "completed":
                result = request.result or {}
                await jobs.mark_job_completed(conn, request.job_id, ctx, result=result)
            elif request.status == "failed":
                await jobs.mark_job_failed(
                    conn, request.job_id, ctx, error_message=reason, result=request.result
                )
            else:
                await jobs.mark_job_cancelled(
                    conn, request.job_id, ctx, reason=reason, result=request.result
                )
            why = f"job {request.status}" + (f": {request.reason}" if request.reason else "")
            await jobs.close_open_steps(conn, request.job_id, why)


def _planned(steps: list[Step]) -> list[jobs.PlannedStep]:
    return [
        jobs.PlannedStep(
            description=step.description,
            action=step.action.model_dump(mode="json"),
            risk=step.risk,
        )
        for step in steps
    ]
