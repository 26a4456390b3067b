"""Higgsfield image generations: submit at most once, read status, cancel, keep results.

At most one submission. An attempt may call Higgsfield's submit only after it claimed
the call: one UPDATE that sets ``submit_started_at`` where it and the request id are
still empty (``claim_submission``), committed before the call. Two attempts (a retry
beside an attempt Temporal gave up on, or two workers) cannot both claim. After the
call the request id is recorded with the move to ``queued``. A claim is given back only
when the call certainly did not reach Higgsfield (connection refused, 4xx, 429).

An attempt that finds the marker set and no request id cannot know whether the earlier
call reached Higgsfield (its worker may have died in between), so it never submits: it
returns ``unknown`` and the workflow learns the request id from Higgsfield's webhook,
which names it. That is the recovery path: the webhook, or an operator who finds the
request on Higgsfield and sends its id to the workflow (the ``higgsfield_webhook``
signal, as the webhook would); without either, the generation fails at its deadline.

The call itself is bounded inside the attempt's start-to-close timeout: an attempt only
claims while it has time to finish the call, and abandons a call that outlives its
bound (outcome unknown, marker kept). It heartbeats meanwhile, so a dead worker is
noticed within the heartbeat timeout; its retry then finds the marker and does not
submit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import httpx
import psycopg
from higgsfield_client import (
    NSFW,
    Cancelled,
    Completed,
    Failed,
    HiggsfieldClientError,
    InProgress,
    Queued,
    Status,
)
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import heartbeating, transition_context
from activities.credentials import CredentialBox, DecryptionError
from activities.higgsfield_client import HiggsfieldClient, application_for
from activities.object_store import (
    EXTENSIONS,
    LocalFolderStore,
    ObjectRefused,
    ObjectStore,
    object_key,
    sniff_image_type,
)
from db import generations
from db.generations import GenerationRow, GenerationStatus
from db.pool import Pool

_STATUSES: dict[type[Status], GenerationStatus] = {
    Queued: "queued",
    InProgress: "in_progress",
    Completed: "completed",
    Failed: "failed",
    NSFW: "nsfw",
    Cancelled: "cancelled",  # Higgsfield spells it "canceled"
}


@dataclass(frozen=True)
class HiggsfieldConfig:
    """Where Higgsfield is, where its webhooks come back, where results are kept."""

    base_url: str
    ingress_url: str
    token_secret: str
    asset_dir: Path


def webhook_token(secret: str, generation_id: UUID) -> str:
    """The token in a generation's webhook URL (Higgsfield's webhooks are unsigned)."""
    msg = f"higgsfield-webhook:{generation_id}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def webhook_url(config: HiggsfieldConfig, generation_id: UUID) -> str:
    """The ingress URL Higgsfield calls when the generation ends."""
    token = webhook_token(config.token_secret, generation_id)
    return f"{config.ingress_url}/webhooks/higgsfield/{generation_id}?token={token}"


class CreateGenerationInput(BaseModel):
    """A generation to persist."""

    generation_id: UUID
    user_id: UUID
    prompt_id: UUID | None = None
    prompt_text: str | None = None
    model: str
    settings: dict[str, Any]
    batch_id: UUID | None = None


class GenerationCreated(BaseModel):
    """The user's tier (for the concurrency limit)."""

    tier: str


class SlotInput(BaseModel):
    """Take one of the user's concurrent-generation slots."""

    generation_id: UUID
    user_id: UUID
    limit: int


class GenerationRef(BaseModel):
    """Which generation (and Higgsfield request, once known)."""

    generation_id: UUID
    request_id: str | None = None


class SubmitResult(BaseModel):
    """The Higgsfield request id, or ``unknown`` when an earlier call's outcome is."""

    outcome: Literal["submitted", "unknown"]
    request_id: str | None = None


class CheckResult(BaseModel):
    """The generation's status after a status read (persisted)."""

    status: GenerationStatus
    result_count: int = 0


class CancelResult(BaseModel):
    """Whether Higgsfield cancelled the request, and why not."""

    cancelled: bool
    reason: str | None = None


class FinishInput(BaseModel):
    """End a generation as failed or cancelled, with the reason."""

    generation_id: UUID
    status: Literal["failed", "cancelled"]
    error_message: str


class GenerationActivities:
    """Generation rows and calls to Higgsfield with the user's own key."""

    def __init__(
        self,
        pool: Pool,
        credentials: CredentialBox,
        http: httpx.AsyncClient,
        config: HiggsfieldConfig,
        store: ObjectStore | None = None,
    ) -> None:
        self.pool = pool
        self.credentials = credentials
        self.http = http
        self.config = config
        # Where results are copied: the bucket, or by default the local asset folder.
        self.store: ObjectStore = store or LocalFolderStore(config.asset_dir)

    def _higgsfield(self, key: str) -> HiggsfieldClient:
        # Each user's key, the worker's shared connections.
        return HiggsfieldClient(base_url=self.config.base_url, api_key=key, http=self.http)

    async def _with_client(self, generation_id: UUID) -> tuple[GenerationRow, HiggsfieldClient]:
        """The generation's row and a client calling Higgsfield with its user's key."""
        async with self.pool.connection() as conn:
            row = await generations.get_generation(conn, generation_id)
            key = await self._user_key(conn, row.user_id)
        return row, self._higgsfield(key)

    @activity.defn
    async def create_generation(self, request: CreateGenerationInput) -> GenerationCreated:
        """Insert the pending generation (resolving a stored prompt's text)."""
        async with self.pool.connection() as conn:
            text = request.prompt_text
            if request.prompt_id is not None:
                stored = await generations.prompt_text(conn, request.prompt_id, request.user_id)
                if stored is None:
                    raise ApplicationError(
                        f"prompt {request.prompt_id} is not a prompt of user {request.user_id}",
                        type="InvalidGeneration",
                        non_retryable=True,
                    )
                text = text or stored
            tier = await generations.user_tier(conn, request.user_id)
            if tier is None:
                raise ApplicationError(
                    f"user {request.user_id} has no profile",
                    type="InvalidGeneration",
                    non_retryable=True,
                )
            await generations.insert_generation(
                conn,
                generation_id=request.generation_id,
                user_id=request.user_id,
                prompt_id=request.prompt_id,
                prompt_text=text or "",
                model=request.model,
                settings=request.settings,
                workflow_id=activity.info().workflow_id or "",
                batch_id=request.batch_id,
            )
        return GenerationCreated(tier=tier)

    @activity.defn
    async def take_slot(self, request: SlotInput) -> bool:
        """Move to submitting if the user has a free slot; False if not yet."""
        async with self.pool.connection() as conn:
            row = await generations.take_slot(
                conn,
                request.generation_id,
                request.user_id,
                request.limit,
                transition_context("slot taken"),
            )
        return row is not None

    @activity.defn
    async def submit_generation(self, request: GenerationRef) -> SubmitResult:
        """Submit to Higgsfield at most once (see the module docstring)."""
        began = time.monotonic()
        async with heartbeating():
            return await self._submit(request.generation_id, began)

    async def _submit(self, generation_id: UUID, began: float) -> SubmitResult:
        async with self.pool.connection() as conn:
            row = await generations.get_generation(conn, generation_id)
            if row.higgsfield_job_id:
                return SubmitResult(outcome="submitted", request_id=row.higgsfield_job_id)
            if row.submit_started_at is not None:
                activity.logger.warning("earlier submit outcome unknown; not submitting again")
                return SubmitResult(outcome="unknown")
            key = await self._user_key(conn, row.user_id)
            latest, call_bound = _submit_window(began)
            try:
                claimed_at = await generations.claim_submission(
                    conn, row.id, within=_left_until(latest)
                )
            except psycopg.errors.QueryCanceled:
                raise _window_missed(latest) from None  # waited too long for the row
            if claimed_at is None:
                return await _after_lost_claim(conn, row.id)
            if time.monotonic() > latest:
                await generations.release_submission(conn, row.id, claimed_at)
                raise _window_missed(latest)
        client = self._higgsfield(key)
        try:
            async with asyncio.timeout(call_bound):
                controller = await client.submit(
                    application_for(row.model),
                    {"prompt": row.prompt_text, **row.settings},
                    webhook_url=webhook_url(self.config, row.id),
                )
        except TimeoutError:
            # It may have reached Higgsfield: keep the claim, a retry will not resubmit.
            raise ApplicationError(
                f"Higgsfield did not answer the submit within {call_bound:.0f}s; "
                "its outcome is unknown"
            ) from None
        except httpx.ConnectError:
            await self._release(row.id, claimed_at)  # nothing reached Higgsfield
            raise
        except HiggsfieldClientError as exc:
            status = _http_status(exc)
            if status is not None and status < 500:
                await self._release(row.id, claimed_at)
                if status == 429:
                    raise _rate_limited() from exc
                raise ApplicationError(
                    f"Higgsfield refused the generation ({status}): {exc}",
                    type="GenerationRefused",
                    non_retryable=True,
                ) from exc
            raise  # 5xx: it may have been created; the retry will not resubmit
        async with self.pool.connection() as conn:
            await generations.record_submission(
                conn, row.id, controller.request_id, transition_context("submitted to Higgsfield")
            )
        return SubmitResult(outcome="submitted", request_id=controller.request_id)

    @activity.defn
    async def adopt_request(self, request: GenerationRef) -> None:
        """Record a request id learned from a webhook after an unknown submit outcome."""
        assert request.request_id is not None
        async with self.pool.connection() as conn:
            await generations.record_submission(
                conn,
                request.generation_id,
                request.request_id,
                transition_context("request id learned from Higgsfield's webhook"),
            )

    @activity.defn
    async def check_generation(self, request: GenerationRef) -> CheckResult:
        """Read the status from Higgsfield and persist it (results' URLs included)."""
        assert request.request_id is not None
        row, client = await self._with_client(request.generation_id)
        try:
            state = _STATUSES[type(await client.status(request.request_id))]
            body: dict[str, Any] = {}
            if state in ("completed", "failed"):
                body = await client.result(request.request_id)
        except HiggsfieldClientError as exc:
            status = _http_status(exc)
            if status in (401, 403, 404):
                raise ApplicationError(
                    f"Higgsfield status read refused ({status}): {exc}",
                    type="GenerationLost",
                    non_retryable=True,
                ) from exc
            raise
        values: dict[str, object] = {}
        if state == "completed":
            values["result_urls"] = [str(i["url"]) for i in body.get("images", []) if "url" in i]
        elif state in ("failed", "nsfw", "cancelled"):
            values["error_message"] = _reason(state, body)
        if state == row.status or (state == "queued" and row.status == "in_progress"):
            return CheckResult(status=row.status, result_count=len(row.result_urls))
        async with self.pool.connection() as conn:
            updated = await generations.move(
                conn, row.id, state, transition_context(f"Higgsfield says {state}"), values=values
            )
        return CheckResult(status=updated.status, result_count=len(updated.result_urls))

    @activity.defn
    async def cancel_on_higgsfield(self, request: GenerationRef) -> CancelResult:
        """Cancel the request (Higgsfield allows it only while queued); the workflow
        then records the end it means (cancelled, or failed past its deadline)."""
        assert request.request_id is not None
        _, client = await self._with_client(request.generation_id)
        try:
            await client.cancel(request.request_id)
        except HiggsfieldClientError as exc:
            _raise_if_retryable(exc)
            # A retry after a cancel whose answer was lost is refused as well: the status
            # tells the two apart.
            try:
                already = isinstance(await client.status(request.request_id), Cancelled)
            except HiggsfieldClientError as status_exc:
                _raise_if_retryable(status_exc)
                already = False  # the status cannot be read (401/403/404): not cancelled
            if already:
                return CancelResult(cancelled=True)
            return CancelResult(cancelled=False, reason=f"({_http_status(exc)}) {exc}")
        return CancelResult(cancelled=True)

    @activity.defn
    async def note_cancel_refused(self, request: FinishInput) -> None:
        """Say on the row why a requested cancel could not happen."""
        async with self.pool.connection() as conn:
            await generations.note_error(conn, request.generation_id, request.error_message)

    @activity.defn
    async def finish_generation(self, request: FinishInput) -> None:
        """End as failed or cancelled, with the reason."""
        async with self.pool.connection() as conn:
            await generations.move(
                conn,
                request.generation_id,
                request.status,
                transition_context(request.error_message[:200]),
                values={"error_message": request.error_message},
            )

    @activity.defn
    async def save_results(self, request: GenerationRef) -> list[str]:
        """Copy the result images into asset storage and record them in ``assets``."""
        async with self.pool.connection() as conn:
            row = await generations.get_generation(conn, request.generation_id)
        asset_ids: list[UUID] = []
        for n, url in enumerate(row.result_urls):
            response = await self.http.get(url)
            response.raise_for_status()
            # What the bytes are, not what a CDN calls them (often application/octet-stream).
            mime = (
                sniff_image_type(response.content)
                or response.headers.get("content-type", "application/octet-stream")
                .split(";")[0]
                .strip()
            )
            filename = f"{row.id}_{n}.{EXTENSIONS.get(mime, 'bin')}"
            # The same key on a retry: the upload replaces the object, never adds one.
            key = object_key(row.user_id, "image", filename)
            try:
                await self.store.put(key, response.content, mime)
            except ObjectRefused as exc:
                raise ApplicationError(str(exc), type="AssetRefused", non_retryable=True) from None
            async with self.pool.connection() as conn:
                asset_id = await generations.insert_asset(
                    conn,
                    user_id=row.user_id,
                    filename=filename,
                    file_path=key,
                    mime_type=mime,
                    file_size=len(response.content),
                    metadata={"generation_id": str(row.id), "source_url": url},
                )
                asset_ids.append(asset_id)
        async with self.pool.connection() as conn:
            await generations.set_saved_assets(conn, row.id, asset_ids)
        return [str(a) for a in asset_ids]

    async def _user_key(self, conn: Any, user_id: UUID) -> str:
        encrypted = await generations.user_api_key(conn, user_id, "higgsfield")
        if encrypted is None:
            raise ApplicationError(
                f"user {user_id} has no Higgsfield key: orchestrator keys set --user {user_id} "
                "--service higgsfield",
                type="MissingCredentials",
                non_retryable=True,
            )
        try:
            return self.credentials.decrypt(encrypted, key_context(user_id, "higgsfield"))
        except DecryptionError as exc:
            raise ApplicationError(str(exc), type="DecryptionFailed", non_retryable=True) from None

    async def _release(self, generation_id: UUID, claimed_at: datetime) -> None:
        async with self.pool.connection() as conn:
            await generations.release_submission(conn, generation_id, claimed_at)


# The submit call's bound, and the time kept in reserve after it, at most; both shrink
# with a shorter start-to-close timeout (to a third and a sixth of it).
SUBMIT_CALL_BOUND = 20.0
SUBMIT_RESERVE = 10.0


def _submit_window(began: float) -> tuple[float, float]:
    """The latest (monotonic) time this attempt may start the submit call, and the call's
    bound: started by then, the call ends before the start-to-close timeout, after which
    Temporal may start a retry beside this attempt."""
    limit = activity.info().start_to_close_timeout
    total = limit.total_seconds() if limit else 3 * SUBMIT_CALL_BOUND
    bound = min(SUBMIT_CALL_BOUND, total / 3)
    return began + total - min(SUBMIT_RESERVE, total / 6) - bound, bound


def _left_until(latest: float) -> float:
    """Seconds left until ``latest``; raise (retryably, without claiming) if none."""
    left = latest - time.monotonic()
    if left <= 0:
        raise _window_missed(latest)
    return left


def _window_missed(latest: float) -> ApplicationError:
    late = max(time.monotonic() - latest, 0)
    return ApplicationError(
        f"this attempt is {late:.1f}s past the last moment it could submit safely; "
        "not submitting in this attempt",
        type="SubmitWindowMissed",
    )


async def _after_lost_claim(conn: Any, generation_id: UUID) -> SubmitResult:
    """Another attempt claimed the submit between our read and our claim."""
    row = await generations.get_generation(conn, generation_id)
    if row.higgsfield_job_id:
        return SubmitResult(outcome="submitted", request_id=row.higgsfield_job_id)
    if row.status != "submitting":
        raise ApplicationError(
            f"generation {generation_id} is {row.status}; not submitting it",
            type="GenerationNotSubmitting",
            non_retryable=True,
        )
    if row.submit_started_at is None:
        # The other attempt gave its claim back (its call did not reach Higgsfield).
        raise ApplicationError("the submit claim was given back; claiming again")
    activity.logger.warning("another attempt is submitting; not submitting again")
    return SubmitResult(outcome="unknown")


def key_context(user_id: UUID, service: str) -> str:
    """Where a user's API key is stored (the associated data of its ciphertext)."""
    return f"user_api_keys:{user_id}:{service}"


def _raise_if_retryable(exc: HiggsfieldClientError) -> None:
    """Re-raise what a retry may cure (5xx, no answer; 429 after a pause); return on any
    other refusal, which no retry changes."""
    status = _http_status(exc)
    if status is None or status >= 500:
        raise exc
    if status == 429:
        raise _rate_limited() from exc


def _rate_limited() -> ApplicationError:
    """Higgsfield's 429: retried after a pause."""
    return ApplicationError("Higgsfield rate limit", next_retry_delay=timedelta(seconds=10))


def _http_status(exc: HiggsfieldClientError) -> int | None:
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    return int(response.status_code) if response is not None else None


def _reason(state: str, body: dict[str, Any]) -> str:
    if state == "nsfw":
        return "Higgsfield flagged the result as NSFW"
    if state == "cancelled":
        return "cancelled on Higgsfield"
    return f"Higgsfield failed the generation: {body.get('error') or 'no reason given'}"
