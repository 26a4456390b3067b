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

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ingress.api.decisions import ApprovalHandlers
from ingress.api.errors import ApiError, error_response
from ingress.api.models import (
    Decide,
    Delegate,
    StartBatch,
    StartGeneration,
    StartJob,
)
from ingress.api.pipeline import ApiDeps
from ingress.api.work import WorkHandlers

__all__ = ["ApiDeps", "create_api"]


class _Api(WorkHandlers, ApprovalHandlers):
    """Every handler, on one pipeline."""


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
        Route(
            "/approvals/{id:uuid}/delegation", api.post(Delegate, api.delegate), methods=["POST"]
        ),
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
