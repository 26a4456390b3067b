"""Fault injection shared by the emulators: queued failures, latency and random 503s."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

ErrorBody = Callable[[int, str], dict[str, Any]]

# Paths that control or inspect an emulator are never faulted.
CONTROL_PREFIXES = ("/_emulator", "/_outbox")


def default_error_body(status: int, message: str) -> dict[str, Any]:
    """Return a generic JSON error body."""
    return {"error": message, "status": status}


@dataclass
class _QueuedFailure:
    status: int
    retry_after: float | None
    path_prefix: str | None


class Faults:
    """Failures, latency and random errors one emulator injects into its API requests."""

    def __init__(self, *, seed: int = 0, error_body: ErrorBody = default_error_body) -> None:
        self.latency_s: float = 0.0
        self.error_rate: float = 0.0
        self._random = random.Random(seed)
        self._error_body = error_body
        self._queue: list[_QueuedFailure] = []
        self._injected = 0
        self._lock = threading.Lock()

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: float | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Fail the next ``n`` requests (only those whose path starts with ``path_prefix``)."""
        with self._lock:
            self._queue.extend(_QueuedFailure(status, retry_after, path_prefix) for _ in range(n))

    def reset(self, seed: int = 0) -> None:
        """Clear queued failures, latency and error rate."""
        with self._lock:
            self._queue.clear()
            self.latency_s = 0.0
            self.error_rate = 0.0
            self._random = random.Random(seed)

    def injected_count(self) -> int:
        """Return how many faults have been injected so far."""
        with self._lock:
            return self._injected

    def pending(self) -> int:
        """Return how many queued failures are still waiting for a request."""
        with self._lock:
            return len(self._queue)

    def state(self) -> dict[str, Any]:
        """Return the fault settings as JSON-ready data."""
        with self._lock:
            return {
                "latency_s": self.latency_s,
                "error_rate": self.error_rate,
                "pending": len(self._queue),
                "injected": self._injected,
            }

    def configure(self, data: dict[str, Any]) -> None:
        """Apply settings from a JSON control request (latency_s, error_rate, fail_next...)."""
        if "latency_s" in data:
            self.latency_s = float(data["latency_s"])
        if "error_rate" in data:
            self.error_rate = float(data["error_rate"])
        if data.get("reset"):
            self.reset()
        if "fail_next" in data:
            self.fail_next(
                int(data["fail_next"]),
                status=int(data.get("status", 503)),
                retry_after=data.get("retry_after"),
                path_prefix=data.get("path_prefix"),
            )

    def _take(self, path: str) -> _QueuedFailure | None:
        with self._lock:
            for index, failure in enumerate(self._queue):
                if failure.path_prefix is None or path.startswith(failure.path_prefix):
                    self._injected += 1
                    return self._queue.pop(index)
            if self.error_rate > 0 and self._random.random() < self.error_rate:
                self._injected += 1
                return _QueuedFailure(503, None, None)
        return None

    async def check(self, path: str) -> Response | None:
        """Sleep the latency, then return an error response if this request should fail."""
        if path.startswith(CONTROL_PREFIXES):
            return None
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        failure = self._take(path)
        if failure is None:
            return None
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(int(failure.retry_after))
        body = self._error_body(failure.status, "injected fault: service unavailable")
        return JSONResponse(body, status_code=failure.status, headers=headers)

    def control_route(self) -> Route:
        """Return the ``/_emulator/faults`` route: GET shows the settings, POST changes them."""

        async def faults(request: Request) -> JSONResponse:
            if request.method == "POST":
                self.configure(await request.json())
            return JSONResponse(self.state())

        return Route("/_emulator/faults", faults, methods=["GET", "POST"])

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap an ASGI app so every HTTP request it serves passes through ``check``."""

        async def faulted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            response = await self.check(relative_path(scope))
            if response is None:
                await app(scope, receive, send)
            else:
                await response(scope, receive, send)

        return faulted


def relative_path(scope: Scope) -> str:
    """Return the request path relative to where the app is mounted."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path
