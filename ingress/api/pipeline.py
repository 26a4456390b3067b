"""The API's request pipeline: the caller's token, the body, the idempotency key, and
handing new rows to the dispatcher. The handlers (``work.py``, ``decisions.py``) build on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import httpx
import psycopg
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from temporalio.client import Client
from temporalio.service import RPCError

from db import app_api
from db.dispatch import Entity
from db.pool import Pool
from ingress.api import idempotency
from ingress.api.auth import AuthError, Caller, KeysUnavailable, TokenVerifier, bearer_token
from ingress.api.errors import ApiError
from ingress.api.openapi import openapi_schema
from workers.dispatch import rules
from workers.dispatch.rows import RowDispatcher
from workers.logging import get_logger

log = get_logger("ingress.api")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Caller, str, Any, dict[str, Any]], Awaitable[tuple[int, Any]]]
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


class Pipeline:
    """Authenticates, validates and keeps POSTs once; the handlers are its subclasses'."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps
        self.pool = deps.pool

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
        for _ in range(SETTLE_POLLS):
            async with self.pool.connection() as conn:
                if await app_api.settled(conn, entity, row_id):
                    return
            await asyncio.sleep(0.05)


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
