"""Jobs, generations and batches: start, read and cancel them as the signed-in user."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from temporalio.service import RPCError

from db import app_api
from db.dispatch import Entity
from ingress.api import idempotency
from ingress.api.auth import Caller
from ingress.api.errors import ApiError
from ingress.api.models import (
    ApprovalView,
    BatchView,
    GenerationView,
    JobView,
    StartBatch,
    StartGeneration,
    StartJob,
    StepView,
)
from ingress.api.pipeline import Pipeline
from workers.dispatch import rules
from workers.logging import get_logger

log = get_logger("ingress.api")
FINISHED = ("completed", "failed", "cancelled", "nsfw")


class WorkHandlers(Pipeline):
    """The handlers of ``/v1/jobs``, ``/v1/generations`` and ``/v1/generation-batches``."""

    # --- jobs ---------------------------------------------------------------------------

    async def start_job(
        self, caller: Caller, key: str, body: StartJob, _: dict[str, Any]
    ) -> tuple[int, Any]:
        job_id = idempotency.derived_id(caller.user_id, key, "job")
        plan = {
            "steps": [s.model_dump(mode="json") for s in body.steps],
            "on_rejection": body.on_rejection,
        }
        try:
            async with app_api.as_user(self.pool, caller.claims) as conn:
                await app_api.insert_job(
                    conn,
                    job_id=job_id,
                    user_id=caller.user_id,
                    workspace_id=body.workspace_id,
                    title=body.title,
                    instruction=body.instruction,
                    plan=plan,
                    org_id=body.org_id,
                )
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ForeignKeyViolation):
            raise ApiError(
                422,
                "validation_failed",
                "workspace_id or org_id: not one of your workspaces or organizations",
            ) from None
        await self.dispatch("jobs", job_id)
        return 202, (await self.job(caller, job_id)).model_dump(mode="json")

    async def job(self, caller: Caller, job_id: UUID) -> JobView:
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await app_api.get_job(conn, job_id)
            if row is None:
                raise ApiError(404, "not_found", f"no job {job_id} of yours")
            steps = await app_api.job_steps(conn, job_id)
            approvals = await app_api.job_approvals(conn, job_id)
        return JobView(
            **row.model_dump(),
            workflow_id=row.temporal_workflow_id,
            steps=[StepView.model_validate(s, from_attributes=True) for s in steps],
            approvals=[ApprovalView.model_validate(a, from_attributes=True) for a in approvals],
        )

    async def cancel_job(
        self, caller: Caller, _: str, __: None, params: dict[str, Any]
    ) -> tuple[int, Any]:
        job_id: UUID = params["id"]
        await self._request_cancel(caller, "jobs", job_id)
        return 202, (await self.job(caller, job_id)).model_dump(mode="json")

    async def _request_cancel(self, caller: Caller, entity: Entity, row_id: UUID) -> None:
        what = "job" if entity == "jobs" else "generation"
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await (
                app_api.get_job(conn, row_id)
                if entity == "jobs"
                else app_api.get_generation(conn, row_id)
            )
            if row is None:
                raise ApiError(404, "not_found", f"no {what} {row_id} of yours")
            if row.status in FINISHED:
                raise ApiError(409, "already_finished", f"the {what} is {row.status}")
            await app_api.request_cancel(conn, entity, row_id)
        await self.dispatch(entity, row_id)

    # --- generations --------------------------------------------------------------------

    async def start_generation(
        self, caller: Caller, key: str, body: StartGeneration, _: dict[str, Any]
    ) -> tuple[int, Any]:
        generation_id = idempotency.derived_id(caller.user_id, key, "generation")
        model = _model(body.model)
        async with _RefusedInsert(), app_api.as_user(self.pool, caller.claims) as conn:
            await self._insert_generation(conn, caller, generation_id, body, model, None, None)
        await self.dispatch("generations", generation_id)
        return 202, (await self.generation(caller, generation_id)).model_dump(mode="json")

    async def start_batch(
        self, caller: Caller, key: str, body: StartBatch, _: dict[str, Any]
    ) -> tuple[int, Any]:
        batch_id = idempotency.derived_id(caller.user_id, key, "batch")
        model = _model(body.model)
        async with _RefusedInsert(), app_api.as_user(self.pool, caller.claims) as conn:
            for index, prompt in enumerate(body.prompts):
                generation_id = idempotency.derived_id(caller.user_id, key, f"batch-{index}")
                variation = StartGeneration(
                    **prompt.model_dump(), model=body.model, settings=body.settings
                )
                await self._insert_generation(
                    conn, caller, generation_id, variation, model, batch_id, len(body.prompts)
                )
        try:
            await self.deps.rows.dispatch_batch(batch_id)
        except (RPCError, psycopg.OperationalError) as exc:
            log.warning("batch dispatch deferred to the sweep", error=str(exc))
        return 202, (await self.batch(caller, batch_id)).model_dump(mode="json")

    async def _insert_generation(
        self,
        conn: Any,
        caller: Caller,
        generation_id: UUID,
        body: StartGeneration,
        model: str,
        batch_id: UUID | None,
        batch_size: int | None,
    ) -> None:
        await app_api.insert_generation(
            conn,
            generation_id=generation_id,
            user_id=caller.user_id,
            prompt_id=body.prompt_id,
            prompt_text=body.prompt_text or "",
            model=model,
            settings=body.settings,
            batch_id=batch_id,
            batch_size=batch_size,
            org_id=body.org_id,
        )

    async def generation(self, caller: Caller, generation_id: UUID) -> GenerationView:
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await app_api.get_generation(conn, generation_id)
        if row is None:
            raise ApiError(404, "not_found", f"no generation {generation_id} of yours")
        return _generation_view(row)

    async def batch(self, caller: Caller, batch_id: UUID) -> BatchView:
        async with app_api.as_user(self.pool, caller.claims) as conn:
            rows = await app_api.batch_generations(conn, batch_id)
        if not rows:
            raise ApiError(404, "not_found", f"no batch {batch_id} of yours")
        return BatchView(
            batch_id=batch_id,
            workflow_id=rules.batch_workflow_id(batch_id),
            generations=[_generation_view(r) for r in rows],
        )

    async def cancel_generation(
        self, caller: Caller, _: str, __: None, params: dict[str, Any]
    ) -> tuple[int, Any]:
        generation_id: UUID = params["id"]
        await self._request_cancel(caller, "generations", generation_id)
        return 202, (await self.generation(caller, generation_id)).model_dump(mode="json")


class _RefusedInsert:
    """Row level security or a foreign key refusing an insert: the body named something
    that is not the caller's (a stored prompt)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: object, exc: object, tb: object) -> None:
        if isinstance(
            exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.ForeignKeyViolation
        ):
            raise ApiError(422, "validation_failed", "prompt_id: not one of your prompts") from None


def _model(name: str) -> str:
    try:
        return rules.model(name)
    except rules.Invalid as exc:
        raise ApiError(422, "validation_failed", f"model: {exc}") from None


def _generation_view(row: app_api.UserGeneration) -> GenerationView:
    return GenerationView(**row.model_dump(), workflow_id=row.temporal_workflow_id)
