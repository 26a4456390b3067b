"""Notifications: an event becomes one delivery per channel, each a workflow of its own.

``raise_event`` records a ``notification_queue`` row per channel that takes the event
(a repeated event finds its rows) and starts a ``NotificationDelivery`` workflow per row,
with the row's id in the workflow id: a second start is refused by Temporal. Workflows
raise events through the ``notify`` activity; the ingress and other activities call
``raise_event`` (or ``notify_credentials_expired``) themselves.

A delivery sends once. An email carries Resend's idempotency key (the row's id): a retry,
or a second attempt after a worker died mid-send, returns the email already sent. Slack
has no such key: the post is claimed on the row (committed) before it is made, and an
attempt that finds the claim taken does not post; the claim is given back only when
Slack answered that it posted nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities import slack
from activities.credentials import CredentialBox, DecryptionError
from activities.email import send_email
from activities.notification_messages import compose
from db import notifications
from db.notifications import DeliveryContext, FinalOutcome
from db.pool import Pool
from workflows.models.notification import (
    DELIVERY_WORKFLOW,
    DeliveryInput,
    NotificationEvent,
    NotifyResult,
)

MAX_ATTEMPTS = 5  # seed 002's default for max_attempts
NOTIFICATION_TAG = "notification_id"
# A post whose outcome is unknown is never repeated; the delivery ends "unknown".
OUTCOME_UNKNOWN = "SendOutcomeUnknown"
REFUSED = "NotificationRefused"


@dataclass(frozen=True)
class NotificationConfig:
    """Where mail comes from, whether Resend is configured, and Slack's API URL."""

    sender: str
    email_enabled: bool
    slack_api_url: str


class SlotResult(BaseModel):
    """The wait for the channel's send slot; done: the delivery needs nothing more."""

    wait_seconds: float = 0.0
    max_attempts: int = MAX_ATTEMPTS
    done: bool = False
    # The channel's kind: an email is sent on the email queue, under Resend's rate limit
    # (None in runs recorded before it was returned: their sends ran on the own queue).
    channel_kind: str | None = None


class DeliverInput(BaseModel):
    """One attempt at a delivery, and the retry policy's backoff (for next_attempt_at)."""

    notification_id: UUID
    retry_initial_seconds: float
    retry_max_seconds: float
    max_attempts: int


class DeliverResult(BaseModel):
    """What the channel named the message (Resend's email id, Slack's ts)."""

    external_id: str | None = None


class CloseDeliveryInput(BaseModel):
    """A delivery that ended without a send."""

    notification_id: UUID
    outcome: FinalOutcome
    error: str | None = None


def channel_context(channel_id: UUID) -> str:
    """Where a channel's secret is stored (the associated data of its ciphertext)."""
    return f"notification_channels:{channel_id}"


async def raise_event(
    pool: Pool, client: Client, event: NotificationEvent, *, task_queue: str
) -> NotifyResult:
    """Record the event's deliveries and start each one's workflow (once: a repeat of the
    event, or a start after a crash, is refused by its id and changes nothing)."""
    async with pool.connection() as conn:
        audience = await notifications.event_owner(
            conn,
            user_id=event.user_id,
            org_id=event.org_id,
            entity_type=event.entity_type,
            entity_id=event.entity_id,
        )
        data = event.model_dump(mode="json", exclude={"user_id", "org_id", "occurrence"})
        deliveries = await notifications.enqueue_deliveries(
            conn,
            event_key=event.key,
            event_type=event.event_type,
            user_id=audience.user_id,
            org_id=audience.org_id,
            entity_type=event.entity_type,
            entity_id=event.entity_id,
            event_data=data,
            max_attempts=MAX_ATTEMPTS,
        )
    for delivery in deliveries:
        if delivery.is_processed:
            continue
        with contextlib.suppress(WorkflowAlreadyStartedError):  # under way, or it was
            await client.start_workflow(
                DELIVERY_WORKFLOW,
                DeliveryInput(notification_id=delivery.id),
                id=delivery.temporal_workflow_id or f"notification-{delivery.id}",
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"notify {event.event_type}"[:120],
            )
    return NotifyResult(deliveries=len(deliveries))


async def notify_credentials_expired(
    pool: Pool,
    client: Client,
    *,
    connection_id: UUID,
    account: str,
    reason: str,
    occurrence: str,
    task_queue: str,
    user_id: UUID | None = None,
) -> NotifyResult:
    """Tell the connection's owner its credentials expired (token refresh calls this).
    ``occurrence`` tells this expiry from a later one (e.g. the expired token's expiry
    time): each is told once."""
    event = NotificationEvent(
        event_type="connection.credentials_expired",
        entity_type="connection",
        entity_id=connection_id,
        title=account,
        old_status="active",
        new_status="credentials_expired",
        reason=reason,
        occurrence=occurrence,
        user_id=user_id,  # None: the connection's creator
    )
    return await raise_event(pool, client, event, task_queue=task_queue)


class NotificationActivities:
    """Raises events and makes deliveries: Resend for email, slack_sdk for Slack."""

    def __init__(self, pool: Pool, credentials: CredentialBox, config: NotificationConfig) -> None:
        self.pool = pool
        self.credentials = credentials
        self.config = config

    @activity.defn
    async def notify(self, event: NotificationEvent) -> NotifyResult:
        """Record an event's deliveries and start them (idempotent)."""
        return await raise_event(
            self.pool, activity.client(), event, task_queue=activity.info().task_queue
        )

    @activity.defn
    async def reserve_send_slot(self, request: DeliveryInput) -> SlotResult:
        """Take the channel's next send slot (its rate limit); done if nothing is left."""
        async with self.pool.connection() as conn:
            slot = await notifications.reserve_send_slot(conn, request.notification_id)
            if slot is not None:
                return SlotResult(
                    wait_seconds=slot.wait_seconds,
                    max_attempts=slot.max_attempts,
                    channel_kind=slot.kind,
                )
            state = await notifications.delivery_state(conn, request.notification_id)
            if state is None or state.is_processed:
                return SlotResult(done=True)
            # The channel was deleted after the event: nothing to send to.
            await notifications.close_delivery(
                conn, request.notification_id, "failed", "the channel was deleted"
            )
        return SlotResult(done=True)

    @activity.defn
    async def deliver_notification(self, request: DeliverInput) -> DeliverResult:
        """Send one delivery, once; records the attempt, and its error if it fails."""
        attempt = activity.info().attempt
        async with self.pool.connection() as conn:
            await notifications.record_attempt(conn, request.notification_id, attempt)
            ctx = await notifications.delivery_context(conn, request.notification_id)
        if ctx is None:
            raise ApplicationError(
                "the delivery or its channel is gone", type=REFUSED, non_retryable=True
            )
        if ctx.sent_at is not None or ctx.is_processed:
            return DeliverResult()
        external_id: str | None
        try:
            if ctx.kind == "email":
                external_id = await self._email(ctx)
            else:
                external_id = await self._slack(ctx)
        except ApplicationError as failure:
            await self._record_failure(request, attempt, failure)
            raise
        except Exception as exc:  # retryable as it is; its words on the row
            await self._record_failure(request, attempt, exc)
            raise
        async with self.pool.connection() as conn:
            await notifications.record_sent(conn, request.notification_id, external_id)
        activity.logger.info(
            "notification sent",
            extra={"notification_id": str(request.notification_id), "channel": ctx.kind},
        )
        return DeliverResult(external_id=external_id)

    @activity.defn
    async def close_notification(self, request: CloseDeliveryInput) -> None:
        """End a delivery that sent nothing (or may have): its row is final."""
        async with self.pool.connection() as conn:
            await notifications.close_delivery(
                conn, request.notification_id, request.outcome, request.error
            )

    async def _email(self, ctx: DeliveryContext) -> str:
        if not self.config.email_enabled:
            raise ApplicationError(
                "email notifications are disabled on this worker: RESEND_API_KEY is not set",
                type=REFUSED,
                non_retryable=True,
            )
        to = ctx.email_to or ctx.owner_email
        if not to:
            raise ApplicationError(
                "the email channel has no address and its owner's profile has none",
                type=REFUSED,
                non_retryable=True,
            )
        message = compose(str(ctx.event_type), ctx.event_data or {})
        params = {
            "from": self.config.sender,
            "to": [to],
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "tags": [{"name": NOTIFICATION_TAG, "value": str(ctx.id)}],
        }
        # Resend returns the email already sent for a key it has seen (24 h).
        return await send_email(params, f"notification/{ctx.id}")

    async def _slack(self, ctx: DeliveryContext) -> str | None:
        target = self._target(ctx)
        text = compose(str(ctx.event_type), ctx.event_data or {}).slack_text
        async with self.pool.connection() as conn:
            claimed_at = await notifications.claim_send(conn, ctx.id)
        if claimed_at is None:
            raise ApplicationError(
                "an earlier attempt claimed this Slack post and did not record its outcome "
                "(a worker crash or no answer): not posted again",
                type=OUTCOME_UNKNOWN,
                non_retryable=True,
            )
        try:
            return await slack.post(target, text, api_url=self.config.slack_api_url)
        except slack.SlackRefused as refused:
            async with self.pool.connection() as conn:  # nothing was posted
                await notifications.release_claim(conn, ctx.id, claimed_at)
            if refused.retry_after is not None:
                raise ApplicationError(
                    str(refused),
                    type="SlackRateLimited",
                    next_retry_delay=timedelta(seconds=refused.retry_after),
                ) from None
            raise ApplicationError(str(refused), type=REFUSED, non_retryable=True) from None
        except slack.SlackUnknown as unknown:  # the claim stays: never posted twice
            raise ApplicationError(
                f"{unknown}: it may have been posted; not posted again",
                type=OUTCOME_UNKNOWN,
                non_retryable=True,
            ) from None

    def _target(self, ctx: DeliveryContext) -> slack.SlackTarget:
        try:
            secret = self.credentials.decrypt(ctx.secret or "", channel_context(ctx.channel_id))
        except DecryptionError as exc:
            raise ApplicationError(str(exc), type="DecryptionFailed", non_retryable=True) from None
        if ctx.kind == "slack_webhook":
            return slack.SlackTarget(webhook_url=secret)
        return slack.SlackTarget(bot_token=secret, channel=ctx.slack_channel)

    async def _record_failure(
        self, request: DeliverInput, attempt: int, failure: BaseException
    ) -> None:
        """The attempt's error and, if another attempt will come, when."""
        retry: float | None = None
        final = attempt >= request.max_attempts
        if isinstance(failure, ApplicationError):
            final = final or failure.non_retryable
            if failure.next_retry_delay is not None:
                retry = failure.next_retry_delay.total_seconds()
        if final:
            retry = None
        elif retry is None:
            backoff = request.retry_initial_seconds * 2 ** (attempt - 1)
            retry = min(backoff, request.retry_max_seconds)
        error = str(failure) if isinstance(failure, ApplicationError) else type(failure).__name__
        async with self.pool.connection() as conn:
            await notifications.record_attempt_failed(
                conn, request.notification_id, error[:1000], retry
            )


async def store_channel(
    pool: Pool,
    box: CredentialBox,
    *,
    kind: notifications.ChannelKind,
    user_id: UUID | None = None,
    org_id: UUID | None = None,
    secret: str | None = None,
    slack_channel: str | None = None,
    email_to: str | None = None,
    events: list[str] | None = None,
    per_minute: int = 20,
    channel_id: UUID | None = None,
) -> UUID:
    """Store a notification channel, its secret (webhook URL or bot token) encrypted; a
    ``channel_id`` already stored is replaced."""
    channel_id = channel_id or uuid4()
    async with pool.connection() as conn:
        await notifications.insert_channel(
            conn,
            channel_id=channel_id,
            user_id=user_id,
            org_id=org_id,
            kind=kind,
            events=events,
            email_to=email_to,
            slack_channel=slack_channel,
            secret=box.encrypt(secret, channel_context(channel_id)) if secret else None,
            per_minute=per_minute,
        )
    return channel_id
