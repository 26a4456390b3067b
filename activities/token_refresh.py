"""Long-lived tokens kept fresh: Meta connections and Threads accounts, before they expire.

Each holder's schedule runs ``TokenRefresh`` daily; the refresh calls the platform only
when the token is due (within ``REFRESH_BEFORE`` of its expiry, by the run's own clock,
so a run and its retries agree). The new token is encrypted and stored only if the one
read is still there (a reconnect or key rotation meanwhile wins); the old token stays
valid at the platform until its own expiry, so a crash between the call and the store
loses nothing: the retry refreshes again. A refresh that fails for good is reported
``revoked``; the workflow then suspends the holder (``activities/credential_suspension.py``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.credential_suspension import CredentialSuspension, SuspendInput, SuspendResult
from activities.credentials import CredentialBox, DecryptionError
from activities.metric_sync import credentials_context
from activities.platform_tokens import (
    TokenEndpoints,
    TokenRefused,
    TokenRevoked,
    TokenUnavailable,
    exchange_meta_token,
    refresh_threads_token,
)
from db import metrics, tokens
from db.metrics import ConnectionRow
from db.pool import Pool
from db.tokens import ThreadsAccountRow
from db.transitions import RowNotFound
from workflows.models.housekeeping import Holder, TokenRefreshResult

REFRESH_BEFORE = timedelta(days=7)  # refresh a token this close to its expiry (daily checks)
THREADS_MIN_AGE = timedelta(hours=24)  # Threads refreshes only tokens at least this old
THREADS_LIFETIME = timedelta(days=60)  # a long-lived Threads token, when its age is unknown


def threads_context(account_id: UUID) -> str:
    """The associated data a Threads account's token is encrypted with."""
    return f"threads_accounts:{account_id}"


class RefreshTokenInput(BaseModel):
    """Whose token, and the run's clock (a retry judges due-ness as the first attempt did)."""

    holder: Holder
    holder_id: UUID
    as_of: datetime


class TokenRefreshActivities:
    """Refreshes long-lived tokens; suspends holders whose credentials failed for good."""

    def __init__(
        self,
        pool: Pool,
        credentials: CredentialBox,
        http: httpx.AsyncClient,
        endpoints: TokenEndpoints,
        suspension: CredentialSuspension,
    ) -> None:
        self.pool = pool
        self.credentials = credentials
        self.http = http
        self.endpoints = endpoints
        self.suspension = suspension

    @activity.defn
    async def refresh_long_lived_token(self, request: RefreshTokenInput) -> TokenRefreshResult:
        """Refresh the holder's token if it is due; ``revoked`` if the platform says it
        is gone for good."""
        try:
            async with self.pool.connection() as conn:
                if request.holder == "connection":
                    row = await metrics.get_connection(conn, request.holder_id)
                    return await self._connection(row, request)
                account = await tokens.get_threads_account(conn, request.holder_id)
            return await self._threads(account, request)
        except RowNotFound:
            raise ApplicationError(
                f"{request.holder} {request.holder_id} no longer exists; the next reconcile "
                "removes its schedule",
                type="HolderGone",
                non_retryable=True,
            ) from None

    @activity.defn
    async def suspend_credentials(self, request: SuspendInput) -> SuspendResult:
        """Mark the holder revoked, pause its schedules and tell its owner (once)."""
        return await self.suspension.suspend(activity.client(), request)

    async def _connection(
        self, row: ConnectionRow, request: RefreshTokenInput
    ) -> TokenRefreshResult:
        result = _checked("connection", row)
        if result.outcome != "not_due":
            return result
        if row.platform != "meta" or row.token_expires_at is None:
            result.outcome = "never_expires"  # system-user tokens; Google mints per sync
            return result
        if row.token_expires_at - request.as_of > REFRESH_BEFORE:
            return result
        sealed = str(row.credentials.get("ciphertext", ""))
        secret = self._open(sealed, credentials_context(row.id))
        try:
            token = str(secret["access_token"])
            issued = await exchange_meta_token(self.http, self.endpoints, token)
        except TokenRevoked as exc:
            return _revoked(result, exc)
        except (TokenRefused, TokenUnavailable) as exc:
            raise _failure(exc) from None
        secret["access_token"] = issued.access_token
        expires_at = request.as_of + issued.expires_in if issued.expires_in else None
        new = self.credentials.encrypt(json.dumps(secret), credentials_context(row.id))
        async with self.pool.connection() as conn:
            stored = await tokens.store_connection_token(
                conn, row.id, old_ciphertext=sealed, new_ciphertext=new, expires_at=expires_at
            )
        return _stored(result, stored, expires_at)

    async def _threads(
        self, account: ThreadsAccountRow, request: RefreshTokenInput
    ) -> TokenRefreshResult:
        result = _checked("threads", account)
        if result.outcome != "not_due":
            return result
        expires_at = account.token_expires_at
        if expires_at is None or expires_at - request.as_of > REFRESH_BEFORE:
            result.reason = None if expires_at else "no token_expires_at on the row"
            return result
        issued_at = account.token_refreshed_at or expires_at - THREADS_LIFETIME
        if request.as_of - issued_at < THREADS_MIN_AGE:
            result.reason = "Threads refreshes tokens at least 24 hours old"
            return result
        sealed = account.access_token or ""
        try:
            token = self.credentials.decrypt(sealed, threads_context(account.id))
        except DecryptionError as exc:
            raise _unusable(str(exc)) from None
        try:
            issued = await refresh_threads_token(self.http, self.endpoints, token)
        except TokenRevoked as exc:
            return _revoked(result, exc)
        except (TokenRefused, TokenUnavailable) as exc:
            raise _failure(exc) from None
        new_expiry = request.as_of + (issued.expires_in or THREADS_LIFETIME)
        new = self.credentials.encrypt(issued.access_token, threads_context(account.id))
        async with self.pool.connection() as conn:
            stored = await tokens.store_threads_token(
                conn, account.id, old=sealed, new=new, expires_at=new_expiry
            )
        return _stored(result, stored, new_expiry)

    def _open(self, sealed: str, context: str) -> dict[str, Any]:
        """The decrypted secret of a connection (never leaves this process)."""
        try:
            secret = json.loads(self.credentials.decrypt(sealed, context))
            str(secret["access_token"])
        except DecryptionError as exc:
            raise _unusable(str(exc)) from None
        except (KeyError, TypeError, ValueError):
            raise _unusable(f"no access token stored for {context}") from None
        return dict(secret)


def _checked(holder: Holder, row: ConnectionRow | ThreadsAccountRow) -> TokenRefreshResult:
    """The result so far: ``not_due`` unless there is nothing to refresh (revoked already:
    ``awaiting_reconnect``; inactive)."""
    result = TokenRefreshResult(
        holder=holder,
        holder_id=row.id,
        label=row.label,
        outcome="not_due",
        expires_at=row.token_expires_at,
    )
    if row.credentials_status == "revoked":
        result.outcome = "awaiting_reconnect"
    elif row.is_active is False:
        result.outcome = "inactive"
    return result


def _stored(
    result: TokenRefreshResult, stored: bool, expires_at: datetime | None
) -> TokenRefreshResult:
    """Refreshed, or (the credentials changed while the platform answered) left as the
    reconnect or rotation made them."""
    result.outcome = "refreshed" if stored else "changed_meanwhile"
    if stored:
        result.expires_at = expires_at
    return result


def _revoked(result: TokenRefreshResult, exc: TokenRevoked) -> TokenRefreshResult:
    result.outcome, result.reason = "revoked", str(exc)
    return result


def _failure(exc: TokenRefused | TokenUnavailable) -> ApplicationError:
    """Refused: fail the run (nothing pauses: the owner's consent is intact). Unavailable:
    retry."""
    if isinstance(exc, TokenRefused):
        return ApplicationError(str(exc), type="TokenRefused", non_retryable=True)
    return ApplicationError(str(exc), type="TokenUnavailable")


def _unusable(reason: str) -> ApplicationError:
    return ApplicationError(
        f"stored credentials are unusable: {reason}", type="CredentialsUnusable", non_retryable=True
    )
