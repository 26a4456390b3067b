"""Metric syncs: open the log, pull pages from the platform into performance_metrics, close.

The pull is one activity that fetches page after page and writes them as they come, a few
at a time (``AdPlatformConfig.write_values``), heartbeating its cursor and counts, so a
crash resumes after the last pages written instead of at the first. The window
is split into slices of ``SLICE_DAYS``: a page that keeps failing ends its slice only
(cursors cannot skip a page), and the sync ends ``partial`` naming it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.connectors import (
    AdPlatformConfig,
    AuthExpiredError,
    Connector,
    ConnectorError,
    Page,
    PageFailedError,
    ThrottledError,
)
from activities.connectors.google_ads import GoogleAdsConnector
from activities.connectors.meta import MetaConnector
from activities.context import heartbeating, transition_context
from activities.credential_suspension import CredentialSuspension, SuspendInput
from activities.credentials import CredentialBox, DecryptionError
from activities.google_tokens import GoogleAccessTokens
from activities.platform_tokens import TokenRefused, TokenRevoked, TokenUnavailable
from db import metrics
from db.metrics import ConnectionRow, UpsertCounts
from db.pool import Pool
from db.transitions import RowNotFound

SLICE_DAYS = 7
PAGE_ATTEMPTS = 3  # a page failing this often (5xx, network) is recorded and skipped
PAGE_RETRY_DELAY = 0.5  # seconds, doubled on each attempt
MAX_INLINE_WAIT = 30.0  # longer throttles end the attempt with next_retry_delay
MAX_INLINE_THROTTLES = 5
HEARTBEAT_EVERY = 2.0
MAX_RECORDED_FAILURES = 50  # keeps the workflow history small whatever happens


def credentials_context(connection_id: UUID) -> str:
    """The associated data a connection's credentials are encrypted with."""
    return f"platform_connections:{connection_id}"


class OpenSyncInput(BaseModel):
    """A sync run to open; an explicit window (backfill) or the one since the last sync."""

    sync_id: UUID
    connection_id: UUID
    since: date | None = None
    until: date | None = None


class SyncOpened(BaseModel):
    """The opened sync: what it pulls and for which window."""

    sync_id: UUID
    platform: str
    account: str  # "<platform> account <id> (<name>)": ids, no secrets
    since: date
    until: date
    window_start: datetime
    window_end: datetime


class PullInput(BaseModel):
    """What to pull into performance_metrics."""

    sync_id: UUID
    connection_id: UUID
    since: date
    until: date


class PageFailure(BaseModel):
    """A page that kept failing: which account, slice and page, and why."""

    account_id: str
    since: date
    until: date
    page_index: int
    reason: str


class PullProgress(BaseModel):
    """Heartbeat details: where the pull is (slice, cursor) and what it did so far."""

    slice_index: int = 0
    cursor: str | None = None
    page_index: int = 0
    pages: int = 0
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[PageFailure] = []
    resumed: int = 0  # how many times the pull resumed from a heartbeat


class PullResult(PullProgress):
    """Counts of the whole pull and the pages that failed."""


class CloseSyncInput(BaseModel):
    """How the sync ended."""

    sync_id: UUID
    connection_id: UUID
    status: Literal["success", "partial", "failed"]
    pulled: PullResult | None = None
    error_message: str | None = None
    window_start: datetime
    window_end: datetime


class SyncClosed(BaseModel):
    """The closed log and where last_synced_at stands."""

    sync_id: UUID
    status: str
    last_synced_at: datetime | None


class MetricSyncActivities:
    """Sync logs, the pull from Meta / Google Ads, and the upserts."""

    def __init__(
        self,
        pool: Pool,
        credentials: CredentialBox,
        http: httpx.AsyncClient,
        config: AdPlatformConfig,
        *,
        google_tokens: GoogleAccessTokens | None = None,
        suspension: CredentialSuspension | None = None,
    ) -> None:
        self.pool = pool
        self.credentials = credentials
        self.http = http
        self.config = config
        # Google Ads connections that keep a refresh token mint access tokens through it.
        self.google_tokens = google_tokens
        # Credentials that fail for good: mark, pause, notify (None: only fail the sync).
        self.suspension = suspension

    @activity.defn
    async def open_metric_sync(self, request: OpenSyncInput) -> SyncOpened:
        """Compute the window and open the log row (status running)."""
        async with self.pool.connection() as conn:
            row = await _connection(conn, request.connection_id)
            explicit = request.since is not None and request.until is not None
            if not explicit and not row.is_active:
                raise ApplicationError(
                    f"connection {row.id} is inactive; activate it or run a backfill",
                    type="ConnectionUnavailable",
                    non_retryable=True,
                )
            start, end = self._window(row, request.since, request.until)
            info = activity.info()
            log = await metrics.open_sync_log(
                conn,
                sync_id=request.sync_id,
                connection_id=row.id,
                window_start=start,
                window_end=end,
                workflow_id=info.workflow_id or "",
                run_id=info.workflow_run_id or "",
            )
        assert log.window_start is not None and log.window_end is not None
        return SyncOpened(
            sync_id=log.id,
            platform=row.platform,
            account=row.label,
            since=log.window_start.date(),
            until=(log.window_end - timedelta(microseconds=1)).date(),
            window_start=log.window_start,
            window_end=log.window_end,
        )

    def _window(
        self, row: ConnectionRow, since: date | None, until: date | None
    ) -> tuple[datetime, datetime]:
        now = datetime.now(UTC)
        if since is not None and until is not None:
            if until < since:
                raise ApplicationError(
                    f"window ends ({until}) before it starts ({since})",
                    type="InvalidWindow",
                    non_retryable=True,
                )
            end = min(_midnight(until + timedelta(days=1)), now)
            return _midnight(since), max(end, _midnight(since) + timedelta(microseconds=1))
        # Late conversions change recent days: re-pull the lookback before the last sync.
        start = (row.last_synced_at or now) - self.config.lookback
        return _midnight(start.astimezone(UTC).date()), now

    @activity.defn
    async def pull_metrics(self, request: PullInput) -> PullResult:
        """Fetch every page of the window and upsert it; resume from the last heartbeat."""
        info = activity.info()
        progress = PullProgress()
        if info.heartbeat_details:
            progress = PullProgress.model_validate(info.heartbeat_details[0])
            progress.resumed += 1
        async with self.pool.connection() as conn:
            row = await _connection(conn, request.connection_id)
        auth = await self._auth(row)
        connector = self._connector(row, auth.token)
        slices = _slices(request.since, request.until)
        # While waiting on the platform (throttles, slow pages); each beat carries the
        # whole progress, since a heartbeat replaces the details of the last.
        async with heartbeating(lambda: _beat(progress), every=HEARTBEAT_EVERY):
            while progress.slice_index < len(slices):
                since, until = slices[progress.slice_index]
                await self._pull_slice(request, row, connector, auth, since, until, progress)
                progress.slice_index += 1
                progress.cursor, progress.page_index = None, 0
                _beat(progress)
        return PullResult.model_validate(progress.model_dump())

    async def _pull_slice(
        self,
        request: PullInput,
        row: ConnectionRow,
        connector: Connector,
        auth: _Auth,
        since: date,
        until: date,
        progress: PullProgress,
    ) -> None:
        """Fetch the slice's pages and write them together until they hold
        ``config.write_values`` values (METRIC_SYNC_WRITE_VALUES, 40,000: a Google Ads page
        of 10,000 rows already does; Meta's of 500 rows go twenty at a time). Each write has
        fixed costs (two transactions, a pipeline that only overlaps encoding and writing
        once it holds a few statements): 400,000 values in Meta's pages wrote at 0.36-0.42
        of COPY's rate one page at a time, 0.49-0.53 twenty at a time (docs/performance.md,
        "Metric rows"). A crash then pulls up to nineteen pages again."""
        fetched: list[Page] = []  # not written yet: the progress's cursor is before them
        while True:
            cursor = fetched[-1].next_cursor if fetched else progress.cursor
            try:
                page = await self._fetch(row, connector, auth, since, until, cursor)
            except PageFailedError as exc:
                await self._write(request, row, fetched, progress)
                if len(progress.failures) < MAX_RECORDED_FAILURES:
                    progress.failures.append(
                        PageFailure(
                            account_id=row.account_id,
                            since=since,
                            until=until,
                            page_index=progress.page_index,
                            reason=str(exc),
                        )
                    )
                activity.logger.warning(
                    "page failed; continuing with the next slice",
                    extra={"page_index": progress.page_index, "since": str(since)},
                )
                return
            except ApplicationError:
                # Throttled past the inline wait, or refused: what was fetched is written
                # first, so the next attempt resumes after it.
                await self._write(request, row, fetched, progress)
                raise
            fetched.append(page)
            last = page.next_cursor is None
            if last or sum(len(p.values) for p in fetched) >= self.config.write_values:
                await self._write(request, row, fetched, progress)
                fetched = []
            if last:
                return

    async def _write(
        self, request: PullInput, row: ConnectionRow, pages: list[Page], progress: PullProgress
    ) -> None:
        """Upsert fetched pages together, then move the progress past them.

        A big write is done by two connections at once, each half in a transaction of its
        own, so a failure or a crash can leave part of it written. That is safe because the
        progress (the cursor past these pages) is heartbeated only once all of it is
        written: the next attempt pulls and upserts the same pages again from the same
        cursor, and the upsert on natural keys is idempotent (what the failed attempt wrote
        is then counted as unchanged)."""
        if not pages:
            return
        counts = await metrics.upsert_metric_page(
            self.pool,
            connection_id=row.id,
            platform=row.platform,
            sync_id=request.sync_id,
            values=[v for page in pages for v in page.values],
        )
        _add(progress, pages, counts)
        _beat(progress)  # the pages are written: resume after them

    async def _fetch(
        self,
        row: ConnectionRow,
        connector: Connector,
        auth: _Auth,
        since: date,
        until: date,
        cursor: str | None,
    ) -> Page:
        """One page, waiting out short throttles and retrying transient failures; a Google
        access token refused early is minted again once."""
        failures = throttles = 0
        reminted = False
        while True:
            try:
                return await connector.fetch_page(since, until, cursor)
            except ThrottledError as exc:
                throttles += 1
                if exc.retry_after > MAX_INLINE_WAIT or throttles > MAX_INLINE_THROTTLES:
                    # The next attempt resumes from the heartbeat after the platform's wait.
                    raise ApplicationError(
                        f"{exc}; retrying in {exc.retry_after:.0f}s",
                        type="Throttled",
                        category=ApplicationErrorCategory.BENIGN,
                        next_retry_delay=timedelta(seconds=exc.retry_after),
                    ) from None
                activity.logger.info("throttled; waiting", extra={"wait_s": exc.retry_after})
                await asyncio.sleep(exc.retry_after)
            except PageFailedError:
                failures += 1
                if failures >= PAGE_ATTEMPTS:
                    raise
                await asyncio.sleep(PAGE_RETRY_DELAY * 2 ** (failures - 1))
            except AuthExpiredError as exc:
                if auth.refresh_token is not None and not reminted and self.google_tokens:
                    reminted = True  # expired early or revoked since it was minted
                    auth.token = await self._mint(row, auth.refresh_token, refused=auth.token)
                    if isinstance(connector, GoogleAdsConnector):
                        connector.use_token(auth.token)
                    continue
                reason = f"access token expired or revoked ({exc})"
                raise await self._give_up(row, reason, "AuthExpired") from None
            except ConnectorError as exc:
                raise ApplicationError(
                    f"{row.label}: {exc}", type="PlatformRefused", non_retryable=True
                ) from None

    async def _auth(self, row: ConnectionRow) -> _Auth:
        """The access token to use: the stored one, or (Google Ads with a refresh token) one
        minted from the refresh token. Secrets never leave this process."""
        if row.credentials_status == "revoked":
            raise ApplicationError(
                f"{row.label}: its credentials stopped working ({row.credentials_error}); "
                f"reconnect the account with `orchestrator connections reconnect {row.id}`",
                type="AuthExpired",
                non_retryable=True,
            )
        try:
            sealed = str(row.credentials["ciphertext"])
            secret = json.loads(self.credentials.decrypt(sealed, credentials_context(row.id)))
            refresh = secret.get("refresh_token") if row.platform == "google_ads" else None
            if refresh is not None:
                refresh = str(refresh)
                return _Auth(await self._mint(row, refresh), refresh)
            return _Auth(str(secret["access_token"]))
        except (KeyError, TypeError, ValueError, AttributeError, DecryptionError) as exc:
            reason = exc if isinstance(exc, DecryptionError) else "no access token stored"
            raise ApplicationError(
                f"credentials of connection {row.id} are unusable: {reason}",
                type="CredentialsUnusable",
                non_retryable=True,
            ) from None

    async def _mint(
        self, row: ConnectionRow, refresh_token: str, refused: str | None = None
    ) -> str:
        """An access token from Google's token endpoint (cached per process)."""
        if self.google_tokens is None:
            raise ApplicationError(
                f"{row.label}: this worker cannot mint Google access tokens",
                type="PlatformRefused",
                non_retryable=True,
            )
        try:
            return await self.google_tokens.access_token(row.id, refresh_token, refused=refused)
        except TokenRevoked as exc:
            self.google_tokens.forget(row.id)
            reason = f"the Google refresh token stopped working ({exc})"
            raise await self._give_up(
                row, reason, "CredentialsRevoked", flag=" --refresh-token -"
            ) from None
        except TokenRefused as exc:
            raise ApplicationError(
                f"{row.label}: {exc}", type="PlatformRefused", non_retryable=True
            ) from None
        except TokenUnavailable as exc:
            raise ApplicationError(f"{row.label}: {exc}", type="TokenUnavailable") from None

    async def _give_up(
        self, row: ConnectionRow, reason: str, kind: str, *, flag: str = ""
    ) -> ApplicationError:
        """Credentials that failed for good: suspend the connection; the failure to raise,
        saying how to reconnect it."""
        await self._suspend(row, reason)
        return ApplicationError(
            f"{row.label}: {reason}; reconnect the account with `orchestrator connections "
            f"reconnect {row.id}{flag}`",
            type=kind,
            non_retryable=True,
        )

    async def _suspend(self, row: ConnectionRow, reason: str) -> None:
        """Mark the connection revoked, pause its schedules, tell its owner."""
        if self.suspension is None:
            return
        request = SuspendInput(holder="connection", holder_id=row.id, reason=reason)
        done = await self.suspension.suspend(activity.client(), request)
        activity.logger.warning(
            "credentials revoked; schedules paused",
            extra={"paused": done.paused, "notified": done.notified, "note": done.note},
        )

    def _connector(self, row: ConnectionRow, token: str) -> Connector:
        """The platform's connector with the access token (it never leaves this process)."""
        if row.platform == "meta":
            return MetaConnector(
                self.http,
                self.config.meta_graph_url,
                row.account_id,
                token,
                api_version=self.config.meta_api_version,
                conversion_action_types=self.config.meta_conversion_action_types,
            )
        if row.platform == "google_ads":
            developer_token = self.config.google_ads_developer_token
            if not developer_token:
                raise ApplicationError(
                    f"{row.label}: GOOGLE_ADS_DEVELOPER_TOKEN is not set; Google Ads requires "
                    "a developer token on every request: set it on the worker",
                    type="PlatformRefused",
                    non_retryable=True,
                )
            return GoogleAdsConnector(
                self.http,
                self.config.google_ads_url,
                row.account_id,
                token,
                api_version=self.config.google_ads_api_version,
                developer_token=developer_token,
                login_customer_id=row.login_customer_id,
            )
        raise ApplicationError(
            f"connection {row.id}: platform {row.platform!r} has no connector",
            type="PlatformRefused",
            non_retryable=True,
        )

    @activity.defn
    async def close_metric_sync(self, request: CloseSyncInput) -> SyncClosed:
        """Close the log and, after a success, advance last_synced_at over the window."""
        pulled = request.pulled or PullResult()
        details: dict[str, Any] = {
            "pages": pulled.pages,
            "api_rows": pulled.rows,
            "unchanged": pulled.unchanged,
            "resumed": pulled.resumed,
            "failed_pages": [f.model_dump(mode="json") for f in pulled.failures],
        }
        async with self.pool.connection() as conn, conn.transaction():
            log = await metrics.close_sync_log(
                conn,
                request.sync_id,
                transition_context(f"metric sync {request.status}"),
                status=request.status,
                created=pulled.created,
                updated=pulled.updated,
                details=details,
                error_message=request.error_message,
            )
            if request.status == "success":
                await metrics.advance_last_synced(
                    conn,
                    request.connection_id,
                    window_start=request.window_start,
                    synced_to=request.window_end,
                )
            row = await metrics.get_connection(conn, request.connection_id)
        return SyncClosed(sync_id=log.id, status=log.status, last_synced_at=row.last_synced_at)


@dataclass
class _Auth:
    """The access token in use and, for Google Ads, the refresh token it came from."""

    token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)


async def _connection(conn: Any, connection_id: UUID) -> ConnectionRow:
    try:
        return await metrics.get_connection(conn, connection_id)
    except RowNotFound:
        raise ApplicationError(
            f"connection {connection_id} no longer exists",
            type="ConnectionUnavailable",
            non_retryable=True,
        ) from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _slices(since: date, until: date) -> list[tuple[date, date]]:
    """The window in consecutive slices of at most ``SLICE_DAYS`` days."""
    slices = []
    start = since
    while start <= until:
        end = min(start + timedelta(days=SLICE_DAYS - 1), until)
        slices.append((start, end))
        start = end + timedelta(days=1)
    return slices


def _add(progress: PullProgress, pages: list[Page], counts: UpsertCounts) -> None:
    progress.pages += len(pages)
    progress.page_index += len(pages)
    progress.rows += sum(page.rows for page in pages)
    progress.created += counts.created
    progress.updated += counts.updated
    progress.unchanged += counts.unchanged
    progress.cursor = pages[-1].next_cursor


def _beat(progress: PullProgress) -> None:
    """Heartbeat a snapshot of the progress (the SDK sends it later, throttled)."""
    activity.heartbeat(progress.model_copy(deep=True))
