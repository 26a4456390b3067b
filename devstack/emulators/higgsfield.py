"""Emulator of Higgsfield's queue API (submit, status, cancel) and its unsigned webhooks.

As strict as Higgsfield's API reference (docs.higgsfield.ai, read 2026-12-03): a submit goes
to a model's endpoint id (``higgsfield-ai/soul/standard``, ...) and any other path is 404;
the arguments are validated as FastAPI does (422 with a ``detail`` list naming each field).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults
from devstack.emulators.runner import webhook_client
from devstack.emulators.steel import png

OUTCOMES = ("completed", "failed", "nsfw", "slow", "webhook_lost", "webhook_duplicated")
STATUSES = ("queued", "in_progress", "completed", "failed", "nsfw", "canceled")
TERMINAL = frozenset({"completed", "failed", "nsfw", "canceled"})
# Prompt markers that pick an outcome when no explicit rule matches.
MARKERS = {f"[{o}]": o for o in OUTCOMES} | {"[fail]": "failed"}
SLOW_FACTOR = 10.0
Record = dict[str, Any]
# The SOUL text-to-image endpoints of the API reference. Documented arguments (others are
# ignored, as the reference says of style_id on SOUL Cinema): prompt (required),
# aspect_ratio, resolution, enhance_prompt, batch_size (1 or 4), seed (1..1000000, explicit
# null invalid), style_id, style_strength, custom_reference_id. The reference gives no range
# for style_strength; 0..1 is assumed.
APPLICATIONS = frozenset(
    {"higgsfield-ai/soul/standard", "higgsfield-ai/soul/v2/standard", "higgsfield-ai/soul/cinema"}
)
ASPECT_RATIOS = frozenset({"9:16", "16:9", "4:3", "3:4", "1:1", "2:3", "3:2"})
RESOLUTIONS = frozenset({"720p", "1080p"})
BATCH_SIZES = (1, 4)


def validation_errors(arguments: Record) -> list[Record]:
    """FastAPI-shaped ``detail`` entries for every invalid documented argument."""
    errors: list[Record] = []

    def bad(field_name: str, kind: str, msg: str) -> None:
        value = arguments.get(field_name)
        errors.append({"type": kind, "loc": ["body", field_name], "msg": msg, "input": value})

    prompt = arguments.get("prompt")
    if "prompt" not in arguments:
        bad("prompt", "missing", "Field required")
    elif not isinstance(prompt, str) or not prompt.strip():
        bad("prompt", "string_type", "Input should be a non-empty string")
    checks: list[tuple[str, Callable[[Any], bool], str, str]] = [
        (
            "aspect_ratio",
            lambda v: v in ASPECT_RATIOS,
            "enum",
            "Input should be one of " + ", ".join(sorted(ASPECT_RATIOS)),
        ),
        ("resolution", lambda v: v in RESOLUTIONS, "enum", "Input should be '720p' or '1080p'"),
        ("enhance_prompt", lambda v: isinstance(v, bool), "bool_type", "Input should be a boolean"),
        (
            "batch_size",
            lambda v: type(v) is int and v in BATCH_SIZES,
            "literal_error",
            "Input should be 1 or 4",
        ),
        (
            "seed",
            lambda v: type(v) is int and 1 <= v <= 1_000_000,
            "int_type",
            "Input should be an integer from 1 to 1000000",
        ),
        (
            "style_id",
            lambda v: isinstance(v, str) and bool(v),
            "string_type",
            "Input should be a valid string",
        ),
        (
            "style_strength",
            lambda v: type(v) in (int, float) and 0 <= v <= 1,
            "float_type",
            "Input should be a number from 0 to 1",
        ),
        (
            "custom_reference_id",
            lambda v: isinstance(v, str) and bool(v),
            "string_type",
            "Input should be a valid string",
        ),
    ]
    for name, valid, kind, msg in checks:
        if name in arguments and not valid(arguments[name]):
            bad(name, kind, msg)
    return errors


def higgsfield_error_body(status: int, message: str) -> dict[str, Any]:
    """Return an error body in the FastAPI shape the SDK reads ``detail`` from."""
    return {"detail": message}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(higgsfield_error_body(status, message), status_code=status)


def _api_root(request: Request) -> str:
    """Return the absolute URL this app is served under (honours a mount prefix)."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}"


def _terminal_of(outcome: str) -> str:
    return outcome if outcome in ("failed", "nsfw") else "completed"


@dataclass
class _Generation:
    request_id: str
    application: str
    arguments: Record
    webhook_url: str | None
    identity: str
    outcome: str
    api_root: str
    queue_until: float
    run_until: float
    auto: bool
    images: int = 1  # the request's batch_size
    status: str = "queued"
    notified: bool = False
    submitted_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def urls(self) -> Record:
        base = f"{self.api_root}/requests/{self.request_id}"
        return {"status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def body(self, images: int) -> Record:
        """Return the status body, which is also the webhook body on a final status."""
        body: Record = {"status": self.status, "request_id": self.request_id}
        if self.status == "failed":
            return body | {"error": "Generation failed (emulated)"}
        if self.status == "nsfw":
            return body
        body |= self.urls()
        if self.status == "completed":
            files = f"{self.api_root}/_emulator/files/{self.request_id}"
            body["images"] = [{"url": f"{files}/{n}.png"} for n in range(images)]
        return body


class HiggsfieldEmulator:
    """In-memory Higgsfield: queues generations, moves them on by time or by hand, notifies."""

    def __init__(
        self,
        api_keys: set[str] | None = None,
        *,
        queue_s: float = 0.2,
        run_s: float = 0.3,
        images: int = 1,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_keys = api_keys  # None accepts any non-empty "Key ..." credential
        self.queue_s = queue_s
        self.run_s = run_s
        self.images = images
        self._clock = clock  # a fake clock lets tests move time without sleeping
        self.auto_advance = True  # False: generations move only through advance()
        self.faults = Faults(seed=seed, error_body=higgsfield_error_body)
        self._lock = threading.Lock()
        self._webhooks = webhook_client()
        self._default_outcome = "completed"
        self._rules: list[tuple[str, str]] = []
        self._generations: dict[str, _Generation] = {}
        self._deliveries: list[Record] = []
        routes = [
            Route("/requests/{request_id}/status", self._status, methods=["GET"]),
            Route("/requests/{request_id}/cancel", self._cancel, methods=["POST"]),
            Route("/_emulator/files/{request_id}/{n:int}.png", self._file, methods=["GET"]),
            Route("/_emulator/submissions", self._http_submissions, methods=["GET"]),
            Route("/_emulator/webhooks", self._http_webhooks, methods=["GET"]),
            Route("/_emulator/outcome", self._http_outcome, methods=["POST"]),
            Route("/_emulator/requests/{request_id}/advance", self._http_advance, methods=["POST"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            self.faults.control_route(),
            Route("/{application:path}", self._submit, methods=["POST"]),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control -------------------------------------------------------------------------

    def set_outcome(self, outcome: str, *, for_prompt_contains: str | None = None) -> None:
        """Set the default outcome, or the outcome of prompts containing a text."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
        with self._lock:
            if for_prompt_contains is None:
                self._default_outcome = outcome
            else:
                self._rules.insert(0, (for_prompt_contains, outcome))

    def advance(self, request_id: str, to_status: str | None = None) -> str:
        """Move a generation to ``to_status`` (default: its next step); return the status."""
        with self._lock:
            gen = self._generations[request_id]
            self._refresh(gen)
            if to_status is None:
                order = {"queued": "in_progress", "in_progress": _terminal_of(gen.outcome)}
                to_status = order.get(gen.status, gen.status)
            if to_status not in STATUSES:
                raise ValueError(f"unknown status {to_status!r}")
            gen.auto = False
            gen.status = to_status
        self._notify_if_final(request_id)
        return to_status

    def reset(self) -> None:
        """Forget generations, deliveries, outcome rules and faults; restore defaults."""
        with self._lock:
            self._generations.clear()
            self._deliveries.clear()
            self._rules.clear()
            self._default_outcome = "completed"
            self.auto_advance = True
        self.faults.reset()

    # -- inspection ----------------------------------------------------------------------

    def submissions(self) -> list[Record]:
        """Return every accepted submission (body, webhook, auth identity), oldest first."""
        with self._lock:
            return [
                {
                    "request_id": g.request_id,
                    "application": g.application,
                    "arguments": g.arguments,
                    "webhook_url": g.webhook_url,
                    "identity": g.identity,
                    "outcome": g.outcome,
                    "submitted_at": g.submitted_at,
                }
                for g in self._generations.values()
            ]

    def submission_count(self) -> int:
        """Return how many submissions were accepted."""
        with self._lock:
            return len(self._generations)

    def status_of(self, request_id: str) -> str:
        """Return a generation's current status."""
        with self._lock:
            gen = self._generations[request_id]
            self._refresh(gen)
            return gen.status

    def deliveries(self, request_id: str | None = None) -> list[Record]:
        """Return webhook attempts (``delivered`` False for a deliberately lost one)."""
        with self._lock:
            found = [dict(d) for d in self._deliveries]
        return [d for d in found if request_id is None or d["request_id"] == request_id]

    # -- progression and webhooks --------------------------------------------------------

    def _outcome_for(self, arguments: Record) -> str:
        prompt = str(arguments.get("prompt", ""))
        for text, outcome in self._rules:
            if text in prompt:
                return outcome
        for marker, outcome in MARKERS.items():
            if marker in prompt:
                return outcome
        return self._default_outcome

    def _refresh(self, gen: _Generation) -> None:
        """Move a time-driven generation to the status the clock says (lock held)."""
        if not gen.auto or gen.status in TERMINAL:
            return
        now = self._clock()
        if now >= gen.run_until:
            gen.status = _terminal_of(gen.outcome)
        elif now >= gen.queue_until:
            gen.status = "in_progress"

    def _tick(self, request_id: str) -> None:
        with self._lock:
            self._refresh(self._generations[request_id])
        self._notify_if_final(request_id)

    def _notify_if_final(self, request_id: str) -> None:
        """Send the webhook once a generation reaches completed, failed or nsfw."""
        with self._lock:
            gen = self._generations[request_id]
            if gen.notified or gen.status not in TERMINAL - {"canceled"} or not gen.webhook_url:
                return
            gen.notified = True
            url, payload, outcome = gen.webhook_url, gen.body(gen.images), gen.outcome
            if outcome == "webhook_lost":
                self._deliveries.append(
                    {"request_id": request_id, "url": url, "payload": payload, "delivered": False}
                    | {"status_code": None, "error": "lost by the emulator"}
                )
                return
        copies = 2 if outcome == "webhook_duplicated" else 1
        threading.Thread(
            target=self._deliver, args=(request_id, url, payload, copies), daemon=True
        ).start()

    def _deliver(self, request_id: str, url: str, payload: Record, copies: int) -> None:
        for _ in range(copies):
            status_code: int | None = None
            error = None
            try:
                status_code = self._webhooks.post(url, json=payload).status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            record: Record = {"request_id": request_id, "url": url, "payload": payload}
            record |= {"delivered": error is None, "status_code": status_code, "error": error}
            with self._lock:
                self._deliveries.append(record)

    # -- the API -------------------------------------------------------------------------

    def _identity(self, request: Request) -> str | None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "key" or not credential.strip():
            return None
        if self.api_keys is not None and credential not in self.api_keys:
            return None
        return credential.split(":", 1)[0]

    async def _submit(self, request: Request) -> Response:
        identity = self._identity(request)
        if identity is None:
            return _error(401, "Invalid or missing API credentials")
        if request.path_params["application"] not in APPLICATIONS:
            return _error(404, "Not Found")
        try:
            arguments = await request.json()
        except ValueError:
            return _error(422, "Request body must be a JSON object")
        if not isinstance(arguments, dict):
            return _error(422, "Request body must be a JSON object")
        if errors := validation_errors(arguments):
            return JSONResponse({"detail": errors}, status_code=422)
        request_id = str(uuid.uuid4())
        now = self._clock()
        with self._lock:
            outcome = self._outcome_for(arguments)
            run_s = self.run_s * (SLOW_FACTOR if outcome == "slow" else 1)
            gen = _Generation(
                request_id=request_id,
                application=request.path_params["application"],
                arguments=arguments,
                webhook_url=request.query_params.get("hf_webhook"),
                identity=identity,
                outcome=outcome,
                api_root=_api_root(request),
                queue_until=now + self.queue_s,
                run_until=now + self.queue_s + run_s,
                auto=self.auto_advance,
                images=int(arguments.get("batch_size", self.images)),
            )
            self._generations[request_id] = gen
            body = gen.body(gen.images)
        if gen.auto:
            asyncio.get_running_loop().call_later(self.queue_s + run_s, self._tick, request_id)
        return JSONResponse(body)

    async def _status(self, request: Request) -> Response:
        if self._identity(request) is None:
            return _error(401, "Invalid or missing API credentials")
        request_id = request.path_params["request_id"]
        with self._lock:
            gen = self._generations.get(request_id)
            if gen is None:
                return _error(404, "Request not found")
            self._refresh(gen)
            body = gen.body(gen.images)
        self._notify_if_final(request_id)
        return JSONResponse(body)

    async def _cancel(self, request: Request) -> Response:
        if self._identity(request) is None:
            return _error(401, "Invalid or missing API credentials")
        with self._lock:
            gen = self._generations.get(request.path_params["request_id"])
            if gen is None:
                return _error(404, "Request not found")
            self._refresh(gen)
            if gen.status != "queued":
                return _error(400, f"Request cannot be canceled: it is {gen.status}")
            gen.status = "canceled"
        return Response(status_code=202)

    async def _file(self, request: Request) -> Response:
        request_id, n = request.path_params["request_id"], request.path_params["n"]
        with self._lock:
            gen = self._generations.get(request_id)
            if gen is not None:
                self._refresh(gen)
            ready = gen is not None and gen.status == "completed" and n < gen.images
        if not ready:
            return _error(404, "File not found")
        digest = hashlib.sha256(f"{request_id}/{n}".encode()).digest()
        image = png(16, 16, (digest[0], digest[1], digest[2]), (digest[3] % 16, digest[4] % 16))
        return Response(image, media_type="image/png")

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_submissions(self, request: Request) -> Response:
        return JSONResponse({"count": self.submission_count(), "data": self.submissions()})

    async def _http_webhooks(self, request: Request) -> Response:
        return JSONResponse({"data": self.deliveries(request.query_params.get("request_id"))})

    async def _http_outcome(self, request: Request) -> Response:
        body = await request.json()
        try:
            self.set_outcome(body["outcome"], for_prompt_contains=body.get("for_prompt_contains"))
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse({"outcome": body["outcome"]})

    async def _http_advance(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        try:
            status = self.advance(request.path_params["request_id"], body.get("to"))
        except KeyError:
            return _error(404, "Request not found")
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse({"status": status})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})
