"""Errors of the HTTP API: JSON with a stable code, a one-line message and a status."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import JSONResponse


class ErrorDetail(BaseModel):
    """What went wrong: ``code`` is stable (clients branch on it), ``message`` is for people."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


class ApiError(Exception):
    """Answer the request with this error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# The codes, with the status each comes with (documented in the OpenAPI schema).
CODES: dict[str, tuple[int, str]] = {
    "token_missing": (401, "no bearer token"),
    "token_invalid": (401, "the token is forged, for another project or audience, or not a user's"),
    "token_expired": (401, "the token has expired"),
    "idempotency_key_required": (400, "a POST needs an Idempotency-Key header"),
    "idempotency_key_invalid": (400, "the Idempotency-Key is empty, too long or not ASCII"),
    "idempotency_key_reused": (422, "the key was used before with another request"),
    "invalid_json": (400, "the body is not a JSON object"),
    "validation_failed": (422, "the body does not validate"),
    "not_found": (404, "no such thing of yours"),
    "already_finished": (409, "it has finished: nothing to cancel"),
    "decision_refused": (409, "the approval is decided, expired, or no longer waited on"),
    "temporarily_unavailable": (503, "Temporal or the signing keys cannot be reached; retry"),
    "auth_not_configured": (503, "SUPABASE_URL is not set on this server"),
    "method_not_allowed": (405, "the path does not take this method"),
}


def error_body(code: str, message: str) -> dict[str, object]:
    """The JSON of an error."""
    return ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump()


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The JSON answer of an error; a 401 also says how to authenticate."""
    body = error_body(code, message)
    headers = {}
    if status == 401:
        kind = "invalid_request" if code == "token_missing" else "invalid_token"
        headers["WWW-Authenticate"] = f'Bearer realm="api", error="{kind}"'
    return JSONResponse(body, status, headers=headers)
