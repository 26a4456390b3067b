"""The OpenAPI 3.1 schema of ``/v1``, made from the API's pydantic models."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ingress.api.errors import CODES, ErrorBody
from ingress.api.models import (
    ApprovalView,
    BatchView,
    Decide,
    Delegate,
    GenerationView,
    JobView,
    StartBatch,
    StartGeneration,
    StartJob,
)

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """One route of the API, as the schema describes it."""

    method: str
    path: str
    summary: str
    answer: type[BaseModel]
    status: int
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = (401, 404)


OPERATIONS = (
    Operation("post", "/v1/jobs", "Start a job in one of your workspaces", JobView, 202, StartJob),
    Operation("get", "/v1/jobs/{id}", "A job, its steps and approvals", JobView, 200),
    Operation("post", "/v1/jobs/{id}/cancel", "Cancel a job", JobView, 202, errors=(401, 404, 409)),
    Operation(
        "post", "/v1/generations", "Start a generation", GenerationView, 202, StartGeneration
    ),
    Operation("get", "/v1/generations/{id}", "A generation", GenerationView, 200),
    Operation(
        "post",
        "/v1/generations/{id}/cancel",
        "Cancel a generation",
        GenerationView,
        202,
        errors=(401, 404, 409),
    ),
    Operation(
        "post",
        "/v1/generation-batches",
        "Start up to five variations as one batch",
        BatchView,
        202,
        StartBatch,
    ),
    Operation("get", "/v1/generation-batches/{id}", "A batch's generations", BatchView, 200),
    Operation(
        "get",
        "/v1/approvals/{id}",
        "An approval of your job, or one you approve",
        ApprovalView,
        200,
    ),
    Operation(
        "post",
        "/v1/approvals/{id}/decision",
        "Approve or reject (first decision wins; channel app)",
        ApprovalView,
        200,
        Decide,
        errors=(401, 404, 409),
    ),
    Operation(
        "post",
        "/v1/approvals/{id}/delegation",
        "Hand your decision to a colleague of the organization (channel app)",
        ApprovalView,
        200,
        Delegate,
        errors=(401, 404, 409),
    ),
)


@cache
def openapi_schema() -> dict[str, Any]:
    """The schema served at ``/v1/openapi.json``."""
    models: set[type[BaseModel]] = {ErrorBody}
    for op in OPERATIONS:
        models.add(op.answer)
        if op.body is not None:
            models.add(op.body)
    _, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=_name)], ref_template=REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agency-orchestrator API",
            "version": "1",
            "description": (
                "Start, cancel and follow jobs and generations, and decide approvals, as the "
                "signed-in Supabase user. Errors are JSON with a stable code: "
                + "; ".join(f"{code} ({status})" for code, (status, _) in CODES.items())
                + "."
            ),
        },
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "supabase": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The user's Supabase access token",
                }
            },
        },
        "security": [{"supabase": []}],
        "paths": _paths(),
    }


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        parameters: list[dict[str, Any]] = []
        if "{id}" in op.path:
            parameters.append(
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            )
        errors = list(op.errors)
        if op.method == "post":
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "A replay returns the first answer; another request with "
                    "the same key is refused (422 idempotency_key_reused). Kept 24 hours.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
            errors += [400, 422]
        errors.append(503)
        operation: dict[str, Any] = {
            "summary": op.summary,
            "operationId": _operation_id(op),
            "parameters": parameters,
            "responses": {
                str(op.status): {"description": "OK", "content": _json(op.answer)},
                **{
                    str(status): {"description": _error_codes(status), "content": _json(ErrorBody)}
                    for status in sorted(set(errors))
                },
            },
        }
        if op.body is not None:
            operation["requestBody"] = {"required": True, "content": _json(op.body)}
        paths.setdefault(op.path, {})[op.method] = operation
    paths["/v1/openapi.json"] = {
        "get": {
            "summary": "This schema",
            "operationId": "openapi",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        }
    }
    return paths


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def _error_codes(status: int) -> str:
    return ", ".join(code for code, (s, _) in CODES.items() if s == status) or "error"


def _operation_id(op: Operation) -> str:
    words = [w for w in op.path.removeprefix("/v1/").replace("-", "_").split("/") if w != "{id}"]
    return f"{op.method}_{'_'.join(words)}"
