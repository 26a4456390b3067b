"""Emulator of the Threads API's token endpoints (``https://graph.threads.net``).

As the Threads docs describe them (read 2026-12-03, "Long-Lived Access Tokens"):
``GET /access_token?grant_type=th_exchange_token&client_secret=&access_token=`` exchanges
a short-lived token (one hour) for a long-lived one (60 days, ``expires_in`` 5183944);
``GET /refresh_access_token?grant_type=th_refresh_token&access_token=`` refreshes a
long-lived token that is at least 24 hours old and not expired, for 60 days from then.
Errors are Graph API errors: an expired token 190/463, a revoked one 190 with the
revocation's subcode, an unknown one 190. The docs give no error for a token refreshed
too early or of the wrong kind; the emulator answers those with 400 code 100 (invalid
parameter), which a client must not take for a revocation. Expiry follows the shared
``Clock``.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults
from devstack.emulators.tokens import Clock, Issued, TokenStore

DEV_APP_SECRET = "dev-emulator-threads-app-secret"
SHORT_LIVED = timedelta(hours=1)
LONG_LIVED = timedelta(seconds=5183944)
MIN_AGE = timedelta(hours=24)


def _error(message: str, code: int, subcode: int | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A" + uuid.uuid4().hex[:22]
    return JSONResponse({"error": error}, status_code=400)


class ThreadsEmulator:
    """Short- and long-lived Threads user tokens: exchange, refresh, expiry, revocation."""

    def __init__(self, app_secret: str = DEV_APP_SECRET, clock: Clock | None = None) -> None:
        self.app_secret = app_secret
        self.clock = clock or Clock()
        self.tokens = TokenStore(self.clock, "THAA")
        self.faults = Faults(error_body=lambda s, m: {"error": {"message": m, "code": 2}})
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        routes = [
            Route("/access_token", self._exchange, methods=["GET"]),
            Route("/refresh_access_token", self._refresh, methods=["GET"]),
            Route("/_emulator/tokens", self._http_issue, methods=["POST"]),
            Route("/_emulator/revoke", self._http_revoke, methods=["POST"]),
            Route("/_emulator/requests", self._http_requests, methods=["GET"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control -------------------------------------------------------------------------

    def issue_token(self, user: str = "threads-user-1", *, long_lived: bool = False) -> str:
        """A token as Threads' authorization gives it (short-lived), or long-lived as an
        exchange gives it."""
        kind, lifetime = ("long", LONG_LIVED) if long_lived else ("short", SHORT_LIVED)
        return self.tokens.issue(user, kind, lifetime).token

    def revoke(self, token_or_user: str, subcode: int = 458) -> int:
        """The user removed the app's access: their tokens answer 190 from now on."""
        return self.tokens.revoke(token_or_user, subcode)

    def requests(self) -> list[dict[str, Any]]:
        """Every token request served (path, grant type, status), oldest first."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def reset(self) -> None:
        """Forget tokens and requests."""
        with self._lock:
            self._requests.clear()
        self.tokens.clear()
        self.faults.reset()

    # -- the API -------------------------------------------------------------------------

    def _refused(self, token: str) -> tuple[Issued | None, JSONResponse | None]:
        issued = self.tokens.get(token) if token else None
        if issued is None:
            return None, _error("Invalid OAuth access token - Cannot parse access token", 190)
        if issued.revoked is not None:
            message = "Error validating access token: The user has not authorized application."
            return issued, _error(message, 190, issued.revoked)
        now = self.clock.now()
        if issued.expires_at is not None and now >= issued.expires_at:
            message = (
                f"Error validating access token: Session has expired on {issued.expires_at:%c} UTC."
            )
            return issued, _error(message, 190, 463)
        return issued, None

    def _log(self, request: Request, response: Response) -> Response:
        with self._lock:
            self._requests.append(
                {
                    "path": request.url.path,
                    "grant_type": request.query_params.get("grant_type"),
                    "status": response.status_code,
                }
            )
        return response

    def _long_lived(self, subject: str) -> JSONResponse:
        fresh = self.tokens.issue(subject, "long", LONG_LIVED)
        return JSONResponse(
            {
                "access_token": fresh.token,
                "token_type": "bearer",
                "expires_in": int(LONG_LIVED.total_seconds()),
            }
        )

    async def _exchange(self, request: Request) -> Response:
        params = request.query_params
        if params.get("grant_type") != "th_exchange_token":
            return self._log(request, _error("(#100) grant_type must be th_exchange_token", 100))
        if params.get("client_secret") != self.app_secret:
            return self._log(request, _error("Error validating client secret.", 1))
        issued, refused = self._refused(params.get("access_token", ""))
        if refused is not None:
            return self._log(request, refused)
        assert issued is not None
        if issued.kind != "short":
            message = "(#100) access_token must be a short-lived token"
            return self._log(request, _error(message, 100))
        return self._log(request, self._long_lived(issued.subject))

    async def _refresh(self, request: Request) -> Response:
        params = request.query_params
        if params.get("grant_type") != "th_refresh_token":
            return self._log(request, _error("(#100) grant_type must be th_refresh_token", 100))
        issued, refused = self._refused(params.get("access_token", ""))
        if refused is not None:
            return self._log(request, refused)
        assert issued is not None
        if issued.kind != "long":
            message = "(#100) Only long-lived tokens can be refreshed"
            return self._log(request, _error(message, 100))
        if self.clock.now() - issued.issued_at < MIN_AGE:
            message = "(#100) A long-lived token can be refreshed once it is 24 hours old"
            return self._log(request, _error(message, 100))
        return self._log(request, self._long_lived(issued.subject))

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_issue(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        token = self.issue_token(
            str(body.get("user", "threads-user-1")), long_lived=bool(body.get("long_lived"))
        )
        return JSONResponse({"access_token": token})

    async def _http_revoke(self, request: Request) -> Response:
        body = await request.json()
        return JSONResponse(
            {"revoked": self.revoke(str(body["token"]), int(body.get("subcode", 458)))}
        )

    async def _http_requests(self, request: Request) -> Response:
        data = self.requests()
        return JSONResponse({"count": len(data), "data": data})
