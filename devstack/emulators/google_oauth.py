"""Emulator of Google's OAuth 2.0 token endpoint (``https://oauth2.googleapis.com``).

As strict as Google for what the worker does with it: ``POST /token`` takes a form body
(``application/x-www-form-urlencoded``) with ``grant_type=refresh_token``, the refresh
token and the OAuth client's id and secret, and answers an access token for an hour
(``expires_in`` 3599). A refresh token it does not know, or one revoked (the owner removed
the app's access), answers 400 ``invalid_grant``; an unknown client 401 ``invalid_client``;
a refresh token granted to another client 400 ``unauthorized_client``. ``POST /revoke``
revokes a refresh token and the access tokens minted from it, as Google does. Expiry
follows the shared ``Clock``, which tests move forward.
"""

from __future__ import annotations

import secrets
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults
from devstack.emulators.tokens import Clock, State, TokenStore

DEV_CLIENT_ID = "dev-emulator-client.apps.googleusercontent.com"
DEV_CLIENT_SECRET = "dev-emulator-client-secret"
ACCESS_LIFETIME = timedelta(seconds=3599)
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    """The form fields of a ``application/x-www-form-urlencoded`` body (none otherwise)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


class GoogleOAuthEmulator:
    """Refresh tokens granted to OAuth clients, and the access tokens minted from them."""

    def __init__(self, clients: dict[str, str] | None = None, clock: Clock | None = None) -> None:
        self.clients = dict(clients or {DEV_CLIENT_ID: DEV_CLIENT_SECRET})
        self.clock = clock or Clock()
        self.access_tokens = TokenStore(self.clock, "ya29.")
        self.faults = Faults(error_body=lambda s, m: {"error": "internal_failure"})
        self._grants: dict[str, dict[str, Any]] = {}  # refresh token -> client, revoked
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        routes = [
            Route("/token", self._token, methods=["POST"]),
            Route("/revoke", self._revoke, methods=["POST"]),
            Route("/_emulator/refresh_tokens", self._http_grant, methods=["POST"]),
            Route("/_emulator/revoke", self._http_revoke, methods=["POST"]),
            Route("/_emulator/requests", self._http_requests, methods=["GET"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control -------------------------------------------------------------------------

    def grant(self, client_id: str = DEV_CLIENT_ID) -> str:
        """A refresh token an owner granted ``client_id`` (the end of Google's consent)."""
        token = "1//0" + secrets.token_urlsafe(32)
        with self._lock:
            self._grants[token] = {"client_id": client_id, "revoked": False}
        return token

    def revoke(self, refresh_token: str) -> None:
        """The owner removed the app's access: the grant and its access tokens stop working."""
        with self._lock:
            if refresh_token in self._grants:
                self._grants[refresh_token]["revoked"] = True
        self.access_tokens.revoke(refresh_token)

    def access_token_state(self, token: str) -> State | None:
        """valid, expired or revoked for a token minted here; None for any other."""
        return self.access_tokens.state(token)

    def mint_count(self, refresh_token: str | None = None) -> int:
        """How many access tokens were minted (from one refresh token, if given)."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if r["status"] == 200 and refresh_token in (None, r["refresh_token"])
            )

    def reset(self) -> None:
        """Forget grants, tokens and requests."""
        with self._lock:
            self._grants.clear()
            self._requests.clear()
        self.access_tokens.clear()
        self.faults.reset()

    # -- the API -------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        fields = await _form(request)
        response = self._answer(fields)
        with self._lock:
            self._requests.append(
                {
                    "grant_type": fields.get("grant_type"),
                    "refresh_token": fields.get("refresh_token"),
                    "client_id": fields.get("client_id"),
                    "status": response.status_code,
                }
            )
        return response

    def _answer(self, fields: dict[str, str]) -> Response:
        grant_type = fields.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "Required parameter is missing: grant_type")
        if grant_type != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client_id = fields.get("client_id", "")
        if not client_id:
            return _oauth_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        if client_id not in self.clients:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not fields.get("client_secret"):
            return _oauth_error(400, "invalid_request", "client_secret is missing.")
        if fields.get("client_secret") != self.clients[client_id]:
            return _oauth_error(401, "invalid_client", "Unauthorized")
        refresh_token = fields.get("refresh_token")
        if not refresh_token:
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        with self._lock:
            grant = self._grants.get(refresh_token)
        if grant is None:
            return _oauth_error(400, "invalid_grant", "Bad Request")
        if grant["revoked"]:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        if grant["client_id"] != client_id:
            return _oauth_error(400, "unauthorized_client", "Unauthorized")
        issued = self.access_tokens.issue(refresh_token, "access", ACCESS_LIFETIME)
        return JSONResponse(
            {
                "access_token": issued.token,
                "expires_in": int(ACCESS_LIFETIME.total_seconds()),
                "scope": ADWORDS_SCOPE,
                "token_type": "Bearer",
            }
        )

    async def _revoke(self, request: Request) -> Response:
        form = await _form(request)
        token = form.get("token") or request.query_params.get("token") or ""
        with self._lock:
            known = token in self._grants
        if known:
            self.revoke(token)
            return JSONResponse({})
        if self.access_tokens.revoke(token):
            return JSONResponse({})
        return _oauth_error(400, "invalid_token", "Token expired or revoked")

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_grant(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        return JSONResponse({"refresh_token": self.grant(body.get("client_id", DEV_CLIENT_ID))})

    async def _http_revoke(self, request: Request) -> Response:
        self.revoke(str((await request.json())["refresh_token"]))
        return JSONResponse({"revoked": True})

    async def _http_requests(self, request: Request) -> Response:
        with self._lock:
            data = [dict(r, refresh_token=None) for r in self._requests]
        return JSONResponse({"count": len(data), "data": data})
