"""Emulator of Steel's browser-session API: sessions, computer-use actions and screenshots.

The session's browser is modelled as far as navigation needs: a page URL, and an address
bar that Ctrl+L focuses, typing fills and Enter loads (Steel's sessions are a headful
Chromium; its computer-use recipes navigate this way). ``address_bar=False`` models a
browser without one (kiosk/app mode): the keys then go to the page and nothing loads.
``GET /v1/sessions/{id}/live-details`` reports the pages and their URLs, as Steel's does.
"""

from __future__ import annotations

import base64
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults

DEFAULT_TIMEOUT_MS = 300_000
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
}
# Required fields per computer action, as the SDK's SessionComputerParams union declares them.
_REQUIRED = {
    "move_mouse": ("coordinates",),
    "click_mouse": (),
    "drag_mouse": ("path",),
    "scroll": (),
    "press_key": ("keys",),
    "type_text": ("text",),
    "wait": ("duration",),
    "take_screenshot": (),
    "get_cursor_position": (),
}


def steel_error_body(status: int, message: str) -> dict[str, Any]:
    """Return an error body in the Fastify shape Steel's API answers with."""
    return {"statusCode": status, "error": _REASONS.get(status, "Error"), "message": message}


def _error(status: int, message: str, *, retry: bool = True) -> JSONResponse:
    # Stainless SDKs retry 409s unless told not to; a duplicate id never succeeds on retry.
    headers = {} if retry else {"x-should-retry": "false"}
    return JSONResponse(steel_error_body(status, message), status_code=status, headers=headers)


def png(width: int, height: int, rgb: tuple[int, int, int], mark: tuple[int, int]) -> bytes:
    """Return a valid RGB PNG of one colour with a dark 3x3 mark at ``mark`` (pure Python)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    mx, my = mark
    plain = b"\x00" + bytes(rgb) * width  # filter byte 0 (none), then the pixels
    rows = bytearray()
    for y in range(height):
        if abs(y - my) > 1:
            rows += plain
            continue
        row = bytearray(plain)
        for x in range(max(mx - 1, 0), min(mx + 2, width)):
            row[1 + 3 * x : 4 + 3 * x] = b"\x00\x00\x00"
        rows += row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


@dataclass
class _Session:
    id: str
    params: dict[str, Any]
    timeout_ms: int
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: Callable[[], float] = time.monotonic
    started: float = -1.0
    status: str = "live"
    release_reason: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    cursor: tuple[float, float] = (0.0, 0.0)
    url: str = "about:blank"
    address_bar_focused: bool = False
    typed: str = ""  # the address bar's text while it has the focus

    def __post_init__(self) -> None:
        self.started = self.clock()

    def expire_if_due(self) -> None:
        if self.status == "live" and self.clock() - self.started >= self.timeout_ms / 1000:
            self.status, self.release_reason = "released", "timeout"

    def to_json(self, root: str) -> dict[str, Any]:
        params = self.params
        dims = params.get("dimensions") or {"width": 1280, "height": 768}
        return {
            "id": self.id,
            "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
            "creditsUsed": 0,
            "debugUrl": f"{root}/v1/sessions/{self.id}/player",
            "sessionViewerUrl": f"{root}/v1/sessions/{self.id}/player",
            "websocketUrl": f"{root.replace('http', 'ws', 1)}/v1/sessions/{self.id}/cdp",
            "dimensions": dims,
            "duration": int((self.clock() - self.started) * 1000),
            "eventCount": len(self.actions),
            "optimizeBandwidth": params.get("optimizeBandwidth") or {},
            "proxyBytesUsed": 0,
            "status": self.status,
            "timeout": self.timeout_ms,
            "releaseReason": self.release_reason,
            "headless": params.get("headless", False),
            "userAgent": params.get("userAgent"),
            "solveCaptcha": params.get("solveCaptcha", False),
            "isSelenium": params.get("isSelenium", False),
            "region": params.get("region"),
        }


class SteelEmulator:
    """In-memory Steel: sessions that expire after their timeout, and computer-use actions."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key  # None accepts any non-empty key
        self.address_bar = True  # False: the browser shows no address bar (kiosk mode)
        # The plan's concurrent-session cap (None: no cap): a session created beyond it is
        # refused with a 429 until one is released or times out. Steel's docs name the cap
        # per plan, not the answer's headers: this one sends Retry-After (1 s) so tests are
        # quick, and the worker waits 30 s without one.
        self.concurrent_sessions: int | None = None
        self._clock = clock  # seconds; tests pass a fake one to expire sessions without sleeping
        self.faults = Faults(seed=seed, error_body=steel_error_body)
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        routes = [
            Route("/v1/sessions", self._create, methods=["POST"]),
            Route("/v1/sessions", self._list, methods=["GET"]),
            Route("/v1/sessions/release", self._release_all, methods=["POST"]),
            Route("/v1/sessions/{id}", self._retrieve, methods=["GET"]),
            Route("/v1/sessions/{id}/release", self._release, methods=["POST"]),
            Route("/v1/sessions/{id}/computer", self._computer, methods=["POST"]),
            Route("/v1/sessions/{id}/live-details", self._live_details, methods=["GET"]),
            Route("/v1/sessions/{id}/player", self._player, methods=["GET"]),
            Route("/_emulator/sessions", self._http_sessions, methods=["GET"]),
            Route("/_emulator/sessions/{id}/expire", self._http_expire, methods=["POST"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control and inspection ----------------------------------------------------------

    def expire_session(self, session_id: str) -> None:
        """Release a session now as if its timeout had elapsed."""
        with self._lock:
            session = self._sessions[session_id]
            if session.status == "live":
                session.status, session.release_reason = "released", "timeout"

    def reset(self) -> None:
        """Forget every session and fault."""
        with self._lock:
            self._sessions.clear()
            self.address_bar = True
            self.concurrent_sessions = None
        self.faults.reset()

    def sessions(self) -> list[dict[str, Any]]:
        """Return every session ever created (API shape), oldest first."""
        with self._lock:
            for session in self._sessions.values():
                session.expire_if_due()
            return [s.to_json("") for s in self._sessions.values()]

    def created_count(self) -> int:
        """Return how many sessions were created."""
        with self._lock:
            return len(self._sessions)

    def released_ids(self) -> list[str]:
        """Return the ids of sessions released by request or expiry."""
        return [s["id"] for s in self.sessions() if s["status"] == "released"]

    def actions(self, session_id: str) -> list[dict[str, Any]]:
        """Return the computer actions a session received, in order."""
        with self._lock:
            return [dict(a) for a in self._sessions[session_id].actions]

    def screenshot(self, session_id: str) -> bytes:
        """Return the PNG the session would show now."""
        with self._lock:
            return self._screenshot(self._sessions[session_id])

    # -- the vendor API ------------------------------------------------------------------

    def _auth_error(self, request: Request) -> JSONResponse | None:
        key = request.headers.get("steel-api-key", "")
        if not key or (self.api_key is not None and key != self.api_key):
            return _error(401, "Invalid or missing steel-api-key header")
        return None

    def _get(self, request: Request) -> _Session | JSONResponse:
        if error := self._auth_error(request):
            return error
        session = self._sessions.get(request.path_params["id"])
        if session is None:
            return _error(404, f"Session {request.path_params['id']} not found")
        session.expire_if_due()
        return session

    @staticmethod
    def _root(request: Request) -> str:
        # base_url leaves out a Mount's prefix; root_path carries it.
        root = request.url.replace(path=request.scope.get("root_path", ""), query="", fragment="")
        return str(root).rstrip("/")

    async def _create(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        params = await request.json() if await request.body() else {}
        session_id = params.get("sessionId") or str(uuid.uuid4())
        try:
            uuid.UUID(session_id)
        except ValueError:
            return _error(400, "sessionId must be a UUID", retry=False)
        timeout = params.get("timeout", DEFAULT_TIMEOUT_MS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            return _error(400, "timeout must be a positive number of milliseconds", retry=False)
        with self._lock:
            if session_id in self._sessions:
                return _error(409, f"Session with id {session_id} already exists", retry=False)
            if self.concurrent_sessions is not None:
                for other in self._sessions.values():
                    other.expire_if_due()
                live = sum(s.status == "live" for s in self._sessions.values())
                if live >= self.concurrent_sessions:
                    refused = _error(
                        429,
                        f"Concurrent session limit of {self.concurrent_sessions} reached: "
                        "release a session or upgrade your plan",
                    )
                    refused.headers["retry-after"] = "1"
                    return refused
            session = _Session(session_id, params, int(timeout), clock=self._clock)
            self._sessions[session_id] = session
            return JSONResponse(session.to_json(self._root(request)))

    async def _retrieve(self, request: Request) -> Response:
        with self._lock:
            session = self._get(request)
            if isinstance(session, Response):
                return session
            return JSONResponse(session.to_json(self._root(request)))

    async def _list(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        query = request.query_params
        limit = min(int(query.get("limit", 50)), 100)
        with self._lock:
            found = list(self._sessions.values())
            for session in found:
                session.expire_if_due()
            if status := query.get("status"):
                found = [s for s in found if s.status == status]
            if cursor := query.get("cursorId"):
                ids = [s.id for s in found]
                found = found[ids.index(cursor) + 1 :] if cursor in ids else []
            page = [s.to_json(self._root(request)) for s in found[:limit]]
        return JSONResponse({"sessions": page, "totalCount": len(found)})

    async def _release(self, request: Request) -> Response:
        with self._lock:
            session = self._get(request)
            if isinstance(session, Response):
                return session
            if session.status != "live":
                message = f"Session {session.id} already {session.status}"
                return JSONResponse({"success": True, "message": message})
            session.status, session.release_reason = "released", "user_requested"
        return JSONResponse({"success": True, "message": f"Session {session.id} released"})

    async def _release_all(self, request: Request) -> Response:
        if error := self._auth_error(request):
            return error
        with self._lock:
            live = [s for s in self._sessions.values() if s.status == "live"]
            for session in live:
                session.status, session.release_reason = "released", "user_requested"
        return JSONResponse({"success": True, "message": f"Released {len(live)} sessions"})

    async def _computer(self, request: Request) -> Response:
        body = await request.json()
        action = body.get("action")
        with self._lock:
            session = self._get(request)
            if isinstance(session, Response):
                return session
            if session.status != "live":
                # Steel routes actions to the session's live browser; a released one has none.
                return _error(404, f"Session {session.id} is not live (status: {session.status})")
            if action not in _REQUIRED:
                return _error(400, f"Unknown action {action!r}")
            if missing := [f for f in _REQUIRED[action] if f not in body]:
                return _error(400, f"Action {action} requires {', '.join(missing)}")
            session.actions.append(body)
            self._browse(session, body)
            output = self._apply(session, body)
            result: dict[str, Any] = {"output": output, "error": None, "system": None}
            if action == "take_screenshot" or body.get("screenshot"):
                result["base64_image"] = base64.b64encode(self._screenshot(session)).decode()
        return JSONResponse(result)

    def _browse(self, session: _Session, body: dict[str, Any]) -> None:
        """What an action does to the address bar and the page URL."""
        action = body["action"]
        keys = [str(k).lower() for k in body.get("keys", [])]
        if action == "press_key" and keys in (["control", "l"], ["meta", "l"]):
            if self.address_bar:
                session.address_bar_focused, session.typed = True, ""
            return
        if not session.address_bar_focused:
            return
        if action == "type_text":
            session.typed += str(body["text"])
        elif action == "press_key" and keys == ["enter"]:
            typed = session.typed.strip()
            if typed.startswith(("http://", "https://")):
                session.url = typed
            elif typed:  # not a URL: the browser searches for the words
                session.url = "https://www.google.com/search?q=" + typed.replace(" ", "+")
            session.address_bar_focused, session.typed = False, ""
        elif action in ("click_mouse", "press_key"):
            session.address_bar_focused, session.typed = False, ""

    async def _live_details(self, request: Request) -> Response:
        with self._lock:
            session = self._get(request)
            if isinstance(session, Response):
                return session
            if session.status != "live":
                return _error(404, f"Session {session.id} is not live (status: {session.status})")
            root = self._root(request)
            viewer = f"{root}/v1/sessions/{session.id}/player"
            page = {
                "id": f"page-{session.id[:8]}",
                "url": session.url,
                "title": "" if session.url == "about:blank" else session.url,
                "favicon": None,
                "sessionViewerUrl": viewer,
                "sessionViewerFullscreenUrl": f"{viewer}?fullscreen=true",
            }
            return JSONResponse(
                {
                    "pages": [page],
                    "sessionViewerUrl": viewer,
                    "sessionViewerFullscreenUrl": f"{viewer}?fullscreen=true",
                    "wsUrl": f"{root.replace('http', 'ws', 1)}/v1/sessions/{session.id}/cdp",
                }
            )

    @staticmethod
    def _apply(session: _Session, body: dict[str, Any]) -> str:
        action = body["action"]
        if coordinates := body.get("coordinates"):
            session.cursor = (float(coordinates[0]), float(coordinates[1]))
        if action == "drag_mouse":
            end_x, end_y = body["path"][-1][:2]
            session.cursor = (float(end_x), float(end_y))
        x, y = session.cursor
        outputs = {
            "move_mouse": f"Moved mouse to ({x:g}, {y:g})",
            "click_mouse": f"Clicked {body.get('button', 'left')} at ({x:g}, {y:g})",
            "drag_mouse": f"Dragged mouse to ({x:g}, {y:g})",
            "scroll": f"Scrolled by ({body.get('delta_x', 0)}, {body.get('delta_y', 0)})",
            "press_key": f"Pressed {'+'.join(body.get('keys', []))}",
            "type_text": f"Typed {len(body.get('text', ''))} characters",
            "wait": f"Waited {body.get('duration')} seconds",  # not really: tests stay fast
            "take_screenshot": "Screenshot taken",
            "get_cursor_position": f"X={x:g},Y={y:g}",
        }
        return outputs[action]

    @staticmethod
    def _screenshot(session: _Session) -> bytes:
        count = len(session.actions)
        seed = zlib.crc32(session.id.encode())
        rgb = ((seed + count * 47) % 256, (seed // 256 + count * 91) % 256, (count * 29) % 256)
        dims = session.params.get("dimensions") or {"width": 1280, "height": 768}
        x, y = session.cursor
        mark = (int(x * 64 / dims["width"]), int(y * 40 / dims["height"]))
        return png(64, 40, rgb, mark)

    async def _player(self, request: Request) -> Response:
        with self._lock:
            session = self._sessions.get(request.path_params["id"])
            if session is None:
                return HTMLResponse("<p>No such session.</p>", status_code=404)
            image = base64.b64encode(self._screenshot(session)).decode()
            items = "".join(f"<li>{escape(str(a.get('action')))}</li>" for a in session.actions)
        return HTMLResponse(
            f"<!doctype html><title>Steel session</title><h1>Session {session.id}</h1>"
            f"<p>Status: {session.status}</p>"
            f'<img width="320" src="data:image/png;base64,{image}" alt="screen"><ol>{items}</ol>'
        )

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_sessions(self, request: Request) -> Response:
        sessions = self.sessions()
        for session in sessions:
            session["actions"] = self.actions(session["id"])
        return JSONResponse({"sessions": sessions, "created_count": len(sessions)})

    async def _http_expire(self, request: Request) -> Response:
        try:
            self.expire_session(request.path_params["id"])
        except KeyError:
            return _error(404, "Session not found")
        return JSONResponse({"expired": request.path_params["id"]})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})
