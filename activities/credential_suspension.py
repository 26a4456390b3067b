"""Credentials that failed for good: mark the row, pause its schedules, tell the owner.

Consent revoked at Google (``invalid_grant``), a Meta or Threads token expired or revoked
(error 190): no retry can fix it, only the owner reconnecting the account. Until then:
the row says ``revoked`` with the reason, the schedules that would use the credentials
(the metric sync, the token refresh) are paused with a note saying why, and the owner is
told once: on their notification channels that take ``connection.credentials_expired``
(one event per failure: its occurrence is the failure's time), else by an email to their
profile address (Resend idempotency key per failure).
Every step is idempotent: the mark keeps the first reason, a paused schedule stays
paused, the email's key is the same on a retry. Reconnecting (``orchestrator connections
reconnect``) clears the mark, and the next reconcile resumes the schedules.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import resend
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.email import classify_resend_error, send_email
from activities.housekeeping_schedules import token_schedule_id
from activities.metric_schedules import revoked_note, schedule_id
from activities.notifications import notify_credentials_expired
from db import tokens
from db.pool import Pool
from db.tokens import CredentialsState, Holder


class SuspendInput(BaseModel):
    """Whose credentials failed for good, and why (no secret: the platform's message)."""

    holder: Holder
    holder_id: UUID
    reason: str


class SuspendResult(BaseModel):
    """What was done: since when revoked, which schedules were paused, whether the owner
    was told (and if not, why)."""

    holder: Holder
    holder_id: UUID
    label: str
    failed_at: datetime
    paused: list[str] = []
    notified: bool = False
    note: str | None = None


def schedules_of(holder: Holder, holder_id: UUID) -> list[str]:
    """The schedules that use a holder's credentials."""
    refresh = token_schedule_id(holder, holder_id)
    return [schedule_id(holder_id), refresh] if holder == "connection" else [refresh]


def reconnect_hint(holder: Holder, holder_id: UUID) -> str:
    """The command that gives a holder new credentials."""
    if holder == "connection":
        return f"orchestrator connections reconnect {holder_id} --token - (or --refresh-token -)"
    return f"orchestrator threads reconnect {holder_id} --token -"


class CredentialSuspension:
    """Marks, pauses and notifies; shared by the token refresh and the metric sync."""

    def __init__(
        self, pool: Pool, *, sender: str | None, workflow_queue: str | None = None
    ) -> None:
        self.pool = pool
        self.sender = sender  # None: no email (RESEND_API_KEY unset); the mark and pause stay
        # The workflows' task queue, where the notifications' deliveries run (None: the
        # owner's channels are not told, only the email goes out).
        self.workflow_queue = workflow_queue

    async def suspend(self, client: Client, request: SuspendInput) -> SuspendResult:
        """Mark the holder revoked, pause its schedules, email its owner once."""
        async with self.pool.connection() as conn:
            state = await tokens.mark_revoked(
                conn, request.holder, request.holder_id, request.reason
            )
        assert state.credentials_failed_at is not None
        result = SuspendResult(
            holder=request.holder,
            holder_id=request.holder_id,
            label=state.label,
            failed_at=state.credentials_failed_at,
        )
        note = revoked_note(state.label, state.credentials_error or request.reason)
        for name in schedules_of(request.holder, request.holder_id):
            if await _pause(client, name, note):
                result.paused.append(name)
        if state.credentials_notified_at is not None:
            result.notified = True  # a retry: the owner was told already
            return result
        if not await self._tell_channels(client, request.holder, state, result):
            await self._notify(request.holder, state, result)
        return result

    async def _tell_channels(
        self, client: Client, holder: Holder, state: CredentialsState, result: SuspendResult
    ) -> bool:
        """Raise the event on the owner's notification channels; False if none takes it."""
        if self.workflow_queue is None or state.owner_id is None:
            return False
        assert state.credentials_failed_at is not None
        told = await notify_credentials_expired(
            self.pool,
            client,
            connection_id=state.id,
            account=state.label[:500],
            reason=(state.credentials_error or "")[:2000],
            occurrence=str(_failure_stamp(state)),
            task_queue=self.workflow_queue,
            user_id=state.owner_id,
        )
        if not told.deliveries:
            return False
        async with self.pool.connection() as conn:
            await tokens.mark_notified(conn, holder, state.id, state.credentials_failed_at)
        result.notified = True
        result.note = f"told on {told.deliveries} notification channel(s)"
        return True

    async def _notify(self, holder: Holder, state: CredentialsState, result: SuspendResult) -> None:
        if self.sender is None:
            result.note = "no email sent: RESEND_API_KEY is not set on the worker"
            return
        if not state.owner_email:
            result.note = "no email sent: the owner has no email address in profiles"
            return
        assert state.credentials_failed_at is not None
        key = f"credentials-revoked/{holder}/{state.id}/{_failure_stamp(state)}"
        params = {
            "from": self.sender,
            "to": [state.owner_email],
            "subject": f"Reconnect {state.label}: its access stopped working",
            "text": _body(holder, state),
        }
        try:
            await send_email(params, key)
        except resend.exceptions.ResendError as exc:
            failure = classify_resend_error(exc)
            if failure is exc:
                raise  # retryable: the retry sends with the same key
            result.note = f"no email sent: {failure}"
            return
        async with self.pool.connection() as conn:
            await tokens.mark_notified(conn, holder, state.id, state.credentials_failed_at)
        result.notified = True


def _failure_stamp(state: CredentialsState) -> int:
    """One failure's identity (its time in microseconds): the channels' event occurrence
    and the email's idempotency key, so a retry tells nobody twice."""
    assert state.credentials_failed_at is not None
    return int(state.credentials_failed_at.timestamp() * 1_000_000)


def _body(holder: Holder, state: CredentialsState) -> str:
    what = "metric syncs and token refreshes are" if holder == "connection" else "refreshes are"
    return (
        f"The credentials of {state.label} stopped working: {state.credentials_error}.\n\n"
        f"Its scheduled {what} paused so nothing fails over and over. Reconnect the "
        f"account and they resume:\n\n    {reconnect_hint(holder, state.id)}\n\n"
        "Nothing else is needed; no data was lost."
    )


async def _pause(client: Client, schedule: str, note: str) -> bool:
    """Pause a schedule if it exists and runs; True if this call paused it."""
    handle = client.get_schedule_handle(schedule)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    if described.schedule.state.paused:
        return False
    await handle.pause(note=note)
    return True
