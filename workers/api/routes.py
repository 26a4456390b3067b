"""The HTTP API for apps (``/v1``): start, cancel and follow jobs and generations, and
decide approvals, as the signed-in Supabase user.

Every request carries the user's Supabase access token; every POST an
``Idempotency-Key``. What a user may see or do is what row level security lets them: the
API reads and writes their rows as them (``db/app_api.py``), so anything that is not
theirs is not found (404). A start inserts the row the app could have inserted itself
and hands it to the dispatcher at once (the worker's dispatcher would pick it up anyway),
so both ways of starting work behave the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import httpx
import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities.decisions import deliver_decision
from db import app_api
from db.approvals import ApprovalRow
from db.dispatch import Entity
from db.pool import Pool
from workers.api import idempotency
from workers.api.auth import AuthError, Caller, KeysUnavailable, TokenVerifier, bearer_token
from workers.api.errors import ApiError, error_response
from workers.api.models import (
    ApprovalView,
    BatchView,
    Decide,
    GenerationView,
    JobView,
    StartBatch,
    StartGeneration,
    StartJob,
    StepView,
)
from workers.api.openapi import openapi_schema
from workers.dispatch import rules
from workers.dispatch.rows import RowDispatcher
from workers.logging import get_logger

log = get_logger("workers.api")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Caller, str, Any, dict[str, Any]], Awaitable[tuple[int, Any]]]
FINISHED = ("completed", "failed", "cancelled", "nsfw")
SETTLE_POLLS = 40  # x 50 ms: how long an answer waits for another dispatcher's start


@dataclass
class ApiDeps:
    """What the API needs: the database, Temporal, the token verifier, the dispatcher."""

    pool: Pool
    client: Client
    verifier: TokenVerifier | None  # None: SUPABASE_URL is not set
    rows: RowDispatcher
    http: httpx.AsyncClient  # fetches the signing keys

    async def aclose(self) -> None:
        """Close the key fetcher's connections."""
        await self.http.aclose()


def create_api(deps: ApiDeps) -> Starlette:
    """The ``/v1`` application (mounted by the ingress)."""
    api = _Api(deps)
    routes = [
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/jobs", api.post(StartJob, api.start_job), methods=["POST"]),
        Route("/jobs/{id:uuid}", api.get(api.job), methods=["GET"]),
        Route("/jobs/{id:uuid}/cancel", api.post(None, api.cancel_job), methods=["POST"]),
        Route("/generations", api.post(StartGeneration, api.start_generation), methods=["POST"]),
        Route("/generations/{id:uuid}", api.get(api.generation), methods=["GET"]),
        Route(
            "/generations/{id:uuid}/cancel",
            api.post(None, api.cancel_generation),
            methods=["POST"],
        ),
        Route("/generation-batches", api.post(StartBatch, api.start_batch), methods=["POST"]),
        Route("/generation-batches/{id:uuid}", api.get(api.batch), methods=["GET"]),
        Route("/approvals/{id:uuid}", api.get(api.approval), methods=["GET"]),
        Route("/approvals/{id:uuid}/decision", api.post(Decide, api.decide), methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, ApiError: _api_error},  # type: ignore[dict-item]
    )


async def _http_error(_: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        return error_response(405, "method_not_allowed", "this method is not allowed here")
    return error_response(404, "not_found", "no such resource")


async def _api_error(_: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


class _Api:
    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps
        self.pool = deps.pool

    # --- the request pipeline -----------------------------------------------------------

    async def openapi(self, _: Request) -> Response:
        return JSONResponse(openapi_schema())

    async def caller(self, request: Request) -> Caller:
        if self.deps.verifier is None:
            raise ApiError(503, "auth_not_configured", "set SUPABASE_URL to use the API")
        try:
            token = bearer_token(request.headers.get("authorization"))
            return await self.deps.verifier.verify(token)
        except AuthError as exc:
            raise ApiError(401, exc.code, exc.message) from None
        except KeysUnavailable as exc:
            raise ApiError(503, "temporarily_unavailable", str(exc)) from None

    def get(
        self, handler: Callable[[Caller, UUID], Awaitable[BaseModel]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            caller = await self.caller(request)
            view = await handler(caller, request.path_params["id"])
            return JSONResponse(view.model_dump(mode="json"))

        return endpoint

    def post(
        self, model: type[BaseModel] | None, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            caller = await self.caller(request)
            key = idempotency.checked_key(request.headers.get(idempotency.HEADER))
            data = await _json(request, required=model is not None)
            body = _validated(model, data) if model is not None else None
            digest = idempotency.request_hash(request.method, request.url.path, data)
            replay = await idempotency.claim(self.pool, caller.user_id, key, digest)
            if replay is not None:
                headers = {"Idempotent-Replayed": "true"}
                return JSONResponse(replay.body, replay.status, headers=headers)
            try:
                status, payload = await handler(caller, key, body, request.path_params)
            except BaseException:
                await idempotency.release(self.pool, caller.user_id, key)
                raise
            await idempotency.store(
                self.pool, caller.user_id, key, idempotency.Answer(status, payload)
            )
            return JSONResponse(payload, status)

        return endpoint

    async def dispatch(self, entity: Entity, row_id: UUID) -> None:
        """Hand the row to the dispatcher now; if Temporal cannot be reached, the worker's
        dispatcher starts it at its next sweep."""
        try:
            outcome = await self.deps.rows.handle(entity, row_id)
        except (RPCError, psycopg.OperationalError) as exc:
            log.warning("dispatch deferred to the sweep", entity=entity, error=str(exc))
            return
        if outcome == "skipped":  # a worker's dispatcher holds the row: it is starting it
            await self._settled(entity, row_id)

    async def _settled(self, entity: Entity, row_id: UUID) -> None:
        """Wait (briefly) for the dispatcher that holds the row to record what it did, so
        the answer shows the workflow it started."""
        query = "job_settled" if entity == "jobs" else "generation_settled"
        for _ in range(SETTLE_POLLS):
            async with self.pool.connection() as conn:
                if await app_api.one(conn, query, id=row_id):
                    return
            await asyncio.sleep(0.05)

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
                await app_api.run(
                    conn,
                    "insert_job",
                    id=job_id,
                    user_id=caller.user_id,
                    workspace_id=body.workspace_id,
                    title=body.title,
                    instruction=body.instruction,
                    plan=Jsonb(plan),
                )
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ForeignKeyViolation):
            raise ApiError(
                422, "validation_failed", "workspace_id: not one of your workspaces"
            ) from None
        await self.dispatch("jobs", job_id)
        return 202, (await self.job(caller, job_id)).model_dump(mode="json")

    async def job(self, caller: Caller, job_id: UUID) -> JobView:
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await app_api.one(conn, "get_job", id=job_id)
            if row is None:
                raise ApiError(404, "not_found", f"no job {job_id} of yours")
            steps = await app_api.all_rows(conn, "job_steps", job_id=job_id)
            approvals = await app_api.all_rows(conn, "job_approvals", job_id=job_id)
        return JobView(
            **row,
            workflow_id=row["temporal_workflow_id"],
            steps=[StepView.model_validate(s) for s in steps],
            approvals=[ApprovalView.model_validate(a) for a in approvals],
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
            row = await app_api.one(conn, f"get_{what}", id=row_id)
            if row is None:
                raise ApiError(404, "not_found", f"no {what} {row_id} of yours")
            if row["status"] in FINISHED:
                raise ApiError(409, "already_finished", f"the {what} is {row['status']}")
            await app_api.run(conn, f"request_{what}_cancel", id=row_id)
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
        await app_api.run(
            conn,
            "insert_generation",
            id=generation_id,
            user_id=caller.user_id,
            prompt_id=body.prompt_id,
            prompt_text=body.prompt_text or "",
            model=model,
            settings=Jsonb(body.settings),
            batch_id=batch_id,
            batch_size=batch_size,
        )

    async def generation(self, caller: Caller, generation_id: UUID) -> GenerationView:
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await app_api.one(conn, "get_generation", id=generation_id)
        if row is None:
            raise ApiError(404, "not_found", f"no generation {generation_id} of yours")
        return _generation_view(row)

    async def batch(self, caller: Caller, batch_id: UUID) -> BatchView:
        async with app_api.as_user(self.pool, caller.claims) as conn:
            rows = await app_api.all_rows(conn, "batch_generations", batch_id=batch_id)
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

    # --- approvals ----------------------------------------------------------------------

    async def _approval_row(self, caller: Caller, approval_id: UUID) -> dict[str, Any]:
        """The approval if the caller owns its job or is its approver."""
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await app_api.one(conn, "get_approval", id=approval_id)
        if row is None:
            row = await app_api.approval_for_approver(self.pool, approval_id, caller.user_id)
        if row is None:
            raise ApiError(404, "not_found", f"no approval {approval_id} of yours")
        return row

    async def approval(self, caller: Caller, approval_id: UUID) -> ApprovalView:
        return ApprovalView.model_validate(await self._approval_row(caller, approval_id))

    async def decide(
        self, caller: Caller, key: str, body: Decide, params: dict[str, Any]
    ) -> tuple[int, Any]:
        approval = ApprovalRow.model_validate(await self._approval_row(caller, params["id"]))
        email = await app_api.user_email(self.pool, caller.user_id)
        update_id = f"app-{approval.id}-{idempotency.derived_id(caller.user_id, key, 'decide')}"
        try:
            outcome = await deliver_decision(
                self.deps.client,
                approval,
                decision=body.decision,
                decided_by=email or f"user {caller.user_id}",
                channel="app",
                note=body.note,
                update_id=update_id,
            )
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise ApiError(503, "temporarily_unavailable", "Temporal is busy; retry") from None
        if not outcome.applied:
            raise ApiError(409, "decision_refused", outcome.message)
        return 200, (await self.approval(caller, approval.id)).model_dump(mode="json")


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


def _generation_view(row: dict[str, Any]) -> GenerationView:
    return GenerationView(**row, workflow_id=row["temporal_workflow_id"])


async def _json(request: Request, *, required: bool) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return data


def _validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", rules.first_error(exc)) from None
