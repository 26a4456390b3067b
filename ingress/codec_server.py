"""Temporal's codec endpoint on the ingress: ``POST /codec/encode`` and ``/codec/decode``.

The Temporal Web UI (Data Encoder setting) and the CLI (``--codec-endpoint
<ingress>/codec --codec-auth "Bearer <CODEC_AUTH_TOKEN>"``) send payloads here to read or
write them in the clear. The protocol: a JSON body ``{"payloads": [{"metadata": {k:
base64}, "data": base64}]}`` (protobuf JSON of ``Payloads``) answered in the same shape;
the UI adds ``X-Namespace``. Who may call it: whoever holds ``CODEC_AUTH_TOKEN``, and from
a browser only the origins in ``CODEC_CORS_ORIGINS``.

The Web UI cannot send a token of ours (its "Pass access token" sends its own sign-in's),
so a browser signs in once at ``/codec/login`` with the token and gets a session cookie
for ``/codec`` (12 h, HttpOnly, SameSite=Strict, a MAC keyed by the token: changing the
token ends every session); the UI sends it with "Include cross-origin credentials".
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from workers.codec import PayloadDecryptError
from workers.logging import get_logger

log = get_logger("ingress.codec_server")

_PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "authorization, content-type, x-namespace",
    "Access-Control-Max-Age": "600",
}
SESSION_COOKIE = "codec_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class CodecAccess:
    """Who may use the codec endpoint."""

    token: str | None  # None: the endpoint is off
    namespace: str  # the one namespace whose payloads this deployment encrypts
    origins: list[str] = field(default_factory=list)  # the Temporal UI's origins
    secure_cookie: bool = False  # the ingress is served over https

    def __repr__(self) -> str:
        return f"CodecAccess(namespace={self.namespace!r}, origins={self.origins!r})"


def codec_routes(codec: PayloadCodec, access: CodecAccess) -> list[Route]:
    """The two codec routes (and their CORS preflights)."""

    async def endpoint(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") not in access.origins:
            log.warning("codec request from an origin not allowed", origin=origin[:200])
            return JSONResponse({"error": "origin not allowed"}, 403)
        cors = _cors(origin)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=cors | _PREFLIGHT)
        if access.token is None:
            return JSONResponse({"error": "codec endpoint is off (CODEC_AUTH_TOKEN)"}, 404, cors)
        session = request.cookies.get(SESSION_COOKIE)
        if not (
            _bearer_matches(request.headers.get("authorization"), access.token)
            or session_valid(session, access.token, now=time.time())
        ):
            log.warning("codec request without a valid token", path=request.url.path)
            headers = cors | {"WWW-Authenticate": "Bearer"}
            return JSONResponse({"error": "a valid bearer token is required"}, 401, headers)
        namespace = request.headers.get("x-namespace")
        if namespace and namespace != access.namespace:
            return JSONResponse({"error": "namespace not served here"}, 403, cors)
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError, ValueError):
            return JSONResponse({"error": "body is not Payloads JSON"}, 400, cors)
        try:
            if request.url.path.endswith("/encode"):
                result = await codec.encode(payloads.payloads)
            else:
                result = await codec.decode(payloads.payloads)
        except PayloadDecryptError as exc:
            return JSONResponse({"error": str(exc)}, 422, cors)
        body = json_format.MessageToJson(Payloads(payloads=result))
        return Response(body, 200, cors, media_type="application/json")

    async def login(request: Request) -> Response:
        if access.token is None:
            return _page("Codec endpoint off", "CODEC_AUTH_TOKEN is not set.", 404)
        if request.method == "GET":
            return HTMLResponse(_LOGIN_FORM)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        if not hmac.compare_digest(given.encode(), access.token.encode()):
            log.warning("codec sign-in with a wrong token")
            return _page("Not signed in", "That is not the codec token.", 401)
        expires = int(time.time()) + SESSION_SECONDS
        page = _page("Signed in", "The Temporal UI can now decode payloads (12 hours).", 200)
        page.set_cookie(
            SESSION_COOKIE,
            session_value(access.token, expires),
            max_age=SESSION_SECONDS,
            path="/codec",
            secure=access.secure_cookie,
            httponly=True,
            samesite="strict",
        )
        return page

    return [
        Route("/codec/encode", endpoint, methods=["POST", "OPTIONS"]),
        Route("/codec/decode", endpoint, methods=["POST", "OPTIONS"]),
        Route("/codec/login", login, methods=["GET", "POST"]),
    ]


_LOGIN_FORM = (
    "<!doctype html><title>Codec sign-in</title><h1>Read payloads in the Temporal UI</h1>"
    "<form method='post'><label>CODEC_AUTH_TOKEN<br>"
    "<input type='password' name='token' autocomplete='off'></label>"
    "<button type='submit'>Sign in</button></form>"
)


def _page(title: str, message: str, status: int) -> HTMLResponse:
    e = html.escape
    return HTMLResponse(
        f"<!doctype html><title>{e(title)}</title><h1>{e(title)}</h1><p>{e(message)}</p>", status
    )


def session_value(token: str, expires: int) -> str:
    """A session cookie valid until ``expires`` (unix seconds) for holders of ``token``."""
    mac = hmac.new(token.encode(), f"codec-session:{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def session_valid(cookie: str | None, token: str, *, now: float) -> bool:
    """Whether a session cookie was made with ``token`` and has not expired."""
    expires, _, _ = (cookie or "").partition(".")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12 or int(expires) <= now:
        return False
    return hmac.compare_digest((cookie or "").encode(), session_value(token, int(expires)).encode())


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
