"""The remote browser: Steel sessions and computer actions.

One session per job, created idempotently: the workflow reserves the session id on the
job row first, and ``open_session`` looks the id up before creating it, so a retry
after a crash finds the same session. ``run_step`` does not repeat a step whose row
says it completed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import steel
from pydantic import BaseModel
from steel import AsyncSteel
from temporalio import activity
from temporalio.exceptions import ApplicationError

# Every browser activity heartbeats for its whole body, database calls included: an attempt
# waiting out a Postgres outage must not time out and be retried beside itself (two
# attempts would act twice in the browser).
from activities.context import heartbeating
from activities.failures import classified
from activities.object_store import ObjectStore
from activities.screenshots import store_screenshot
from db import jobs
from db.pool import Pool
from workflows.models.steps import Navigate, Step, StepResult

DEFAULT_SESSION_TIMEOUT_MS = 30 * 60 * 1000
# How long a navigation may take to show in the session's live details: 10 x 0.5 s.
NAVIGATION_CHECKS = 10
NAVIGATION_CHECK_INTERVAL = 0.5


class OpenSessionInput(BaseModel):
    """The reserved session id and the workspace's settings for it."""

    job_id: UUID
    session_id: str
    browser_settings: dict[str, Any] = {}


class SessionInfo(BaseModel):
    """A live session and the URL operators can watch it at."""

    session_id: str
    viewer_url: str | None


class RunStepInput(BaseModel):
    """One step to run in a session."""

    job_id: UUID
    session_id: str
    step_index: int
    step: Step


class ScreenshotInput(BaseModel):
    """Capture the page into a blob with a caller-chosen id."""

    session_id: str
    blob_id: UUID


class ReleaseSessionInput(BaseModel):
    """The session to release."""

    session_id: str


def classify_steel_error(exc: Exception, what: str) -> Exception:
    """Transient errors stay retryable (``exc`` itself is returned: re-raise it, never
    ``raise exc from exc``, a cause cycle the failure converter recurses on); a gone
    session and a refused action do not."""
    if isinstance(exc, steel.NotFoundError):
        return ApplicationError(
            f"browser session gone during {what}", type="BrowserSessionGone", non_retryable=True
        )
    if isinstance(exc, steel.APIStatusError) and exc.status_code in (400, 401, 403, 410, 422):
        kind = "BrowserSessionGone" if exc.status_code == 410 else "BrowserActionRefused"
        return ApplicationError(
            f"Steel refused {what} ({exc.status_code}): {exc.message}",
            type=kind,
            non_retryable=True,
        )
    return exc


def _steel_errors(what: str) -> contextlib.AbstractContextManager[None]:
    """Steel's errors in the block, classified (``classify_steel_error``)."""
    return classified(steel.APIError, lambda exc: classify_steel_error(exc, what))


class BrowserActivities:
    """Steel sessions for jobs; screenshots go to object storage or the blobs table."""

    def __init__(self, pool: Pool, client: AsyncSteel, store: ObjectStore | None = None) -> None:
        self.pool = pool
        self.client = client
        self.store = store  # None: screenshots stay in their blobs rows

    @activity.defn
    async def open_session(self, request: OpenSessionInput) -> SessionInfo:
        """Find or create the session with the reserved id; record its live view."""
        async with heartbeating():
            return await self._open_session(request)

    async def _open_session(self, request: OpenSessionInput) -> SessionInfo:
        with _steel_errors("session creation"):
            session = await self._find(request.session_id)
            if session is None or session.status != "live":
                if session is not None:
                    raise ApplicationError(
                        f"browser session {request.session_id} is {session.status}",
                        type="BrowserSessionGone",
                        non_retryable=True,
                    )
                settings = request.browser_settings
                options: dict[str, Any] = {
                    "session_id": request.session_id,
                    "api_timeout": int(settings.get("timeout_ms", DEFAULT_SESSION_TIMEOUT_MS)),
                }
                if profile := settings.get("profile_id"):
                    options["profile_id"] = str(profile)
                    options["persist_profile"] = True
                session = await self.client.sessions.create(**options)
        viewer = getattr(session, "session_viewer_url", None)
        async with self.pool.connection() as conn:
            await jobs.set_session_viewer(conn, request.job_id, request.session_id, viewer)
        return SessionInfo(session_id=session.id, viewer_url=viewer)

    async def _find(self, session_id: str) -> Any:
        try:
            return await self.client.sessions.retrieve(session_id)
        except steel.NotFoundError:
            return None

    @activity.defn
    async def run_step(self, request: RunStepInput) -> StepResult:
        """Run one step unless its row already says it completed."""
        async with heartbeating():
            return await self._run_step(request)

    async def _run_step(self, request: RunStepInput) -> StepResult:
        async with self.pool.connection() as conn:
            row = await jobs.get_step(conn, request.job_id, request.step_index)
            if row and row.status == "completed":
                return _stored_result(row)
            await jobs.mark_step_running(conn, request.job_id, request.step_index)
        try:
            with _steel_errors(f"step {request.step_index}"):
                output, image = await self._perform(request.session_id, request.step)
        except asyncio.CancelledError:
            # Only a cancel the workflow asked for is final. A worker shutting down, a
            # heartbeat timeout or a pause cut this attempt off, and Temporal runs the step
            # again: its row stays running for that attempt to finish.
            details = activity.cancellation_details()
            if details is not None and details.cancel_requested:
                await self._finish(request, "failed", None, None, "cancelled while running")
            raise
        except ApplicationError as failure:
            if failure.type == "BrowserActionRefused":  # Steel refused it: no retry will run
                await self._finish(request, "failed", None, None, str(failure))
            raise
        blob_id = None
        if image is not None:
            blob_id = UUID(bytes=request.job_id.bytes[:12] + request.step_index.to_bytes(4, "big"))
            async with self.pool.connection() as conn:
                await store_screenshot(
                    conn, self.store, blob_id, image, session_id=request.session_id
                )
        await self._finish(request, "completed", output, blob_id, None)
        return StepResult(
            step_index=request.step_index,
            status="completed",
            output=output,
            screenshot_blob_id=str(blob_id) if blob_id else None,
        )

    async def _finish(
        self,
        request: RunStepInput,
        status: Literal["completed", "failed"],
        output: str | None,
        blob_id: UUID | None,
        error: str | None,
    ) -> None:
        async with self.pool.connection() as conn:
            await jobs.finish_step(
                conn,
                request.job_id,
                request.step_index,
                status=status,
                result={"output": output},
                screenshot_ref=f"blob:{blob_id}" if blob_id else None,
                error=error,
            )

    async def _perform(self, session_id: str, step: Step) -> tuple[str | None, bytes | None]:
        action = step.action
        if isinstance(action, Navigate):
            return await self._navigate(session_id, action.url)
        params = action.model_dump(exclude_none=True)
        if params["action"] != "take_screenshot":
            params["screenshot"] = True
        response = await self.client.sessions.computer(session_id, **params)
        return _output(response)

    async def _navigate(self, session_id: str, url: str) -> tuple[str | None, bytes | None]:
        """Open ``url`` and check that the session's page went there.

        Steel's computer API (steel-sdk 0.19) has no navigate action; Steel's own
        computer-use recipes focus the address bar (Ctrl+L), type the URL and press Enter.
        Nothing promises a session's browser an address bar, so the keys are not trusted
        alone: the pages' URLs are read from the session's live details (``GET
        /v1/sessions/{id}/live-details``) before and after. A step whose page did not move
        fails instead of reporting a navigation that did not happen.
        """
        before = await self._page_urls(session_id)
        for params in (
            {"action": "press_key", "keys": ["Control", "l"]},
            {"action": "type_text", "text": url},
            {"action": "press_key", "keys": ["Enter"]},
        ):
            _output(await self.client.sessions.computer(session_id, **params))
        reached = None
        for attempt in range(NAVIGATION_CHECKS):
            reached = _reached(url, before, await self._page_urls(session_id))
            if reached is not None:
                break
            if attempt + 1 < NAVIGATION_CHECKS:
                await asyncio.sleep(NAVIGATION_CHECK_INTERVAL)
        if reached is None:
            raise ApplicationError(
                f"navigation to {url} did not happen: the session's page stayed at "
                f"{', '.join(before) or 'nothing'} (does the session's browser show an address "
                "bar?)",
                type="BrowserNavigationFailed",
            )
        _, image = _output(
            await self.client.sessions.computer(session_id, action="take_screenshot")
        )
        return f"Navigated to {reached}", image

    async def _page_urls(self, session_id: str) -> list[str]:
        details = await self.client.sessions.live_details(session_id)
        return [page.url for page in details.pages]

    @activity.defn
    async def capture_screenshot(self, request: ScreenshotInput) -> str:
        """Store a screenshot of the current page; return the blob id."""
        async with heartbeating():
            return await self._capture_screenshot(request)

    async def _capture_screenshot(self, request: ScreenshotInput) -> str:
        with _steel_errors("screenshot"):
            response = await self.client.sessions.computer(
                request.session_id, action="take_screenshot"
            )
        if not response.base64_image:
            raise ApplicationError("Steel returned no screenshot", type="BrowserActionFailed")
        async with self.pool.connection() as conn:
            await store_screenshot(
                conn,
                self.store,
                request.blob_id,
                base64.b64decode(response.base64_image),
                session_id=request.session_id,
            )
        return str(request.blob_id)

    @activity.defn
    async def release_session(self, request: ReleaseSessionInput) -> None:
        """Release the session; releasing one already released or gone is fine."""
        with _steel_errors("release"):
            try:
                async with heartbeating():
                    await self.client.sessions.release(request.session_id)
            except steel.NotFoundError:
                return  # released before, or gone


def _output(response: Any) -> tuple[str | None, bytes | None]:
    """A computer action's output and screenshot; an error it reports fails the step."""
    if response.error:
        raise ApplicationError(
            f"browser action failed: {response.error}", type="BrowserActionFailed"
        )
    image = base64.b64decode(response.base64_image) if response.base64_image else None
    return response.output, image


def _normalized(url: str) -> str:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _reached(target: str, before: list[str], after: list[str]) -> str | None:
    """The URL the navigation reached: a page now at ``target``, else one that moved to a
    new http(s) URL (a redirect, such as a sign-in page). None: no page moved."""
    wanted = _normalized(target)
    for url in after:
        if _normalized(url) == wanted:
            return url
    seen = {_normalized(u) for u in before}
    moved = [u for u in after if _normalized(u) not in seen and u.startswith(("http:", "https:"))]
    return moved[0] if moved else None


def _stored_result(row: jobs.JobStepRow) -> StepResult:
    ref = row.screenshot_ref
    return StepResult(
        step_index=row.step_index,
        status="completed",
        output=(row.result or {}).get("output"),
        screenshot_blob_id=str(ref)[5:] if ref else None,
    )
