"""Notification channels and the record of each delivery (seed 002's notification_queue)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("notifications")
ChannelKind = Literal["email", "slack_webhook", "slack_bot"]
FinalOutcome = Literal["failed", "unknown"]


class Delivery(BaseModel):
    """One event's delivery to one channel."""

    id: UUID
    channel_id: UUID | None
    is_processed: bool
    temporal_workflow_id: str | None


class SendSlot(BaseModel):
    """How long to wait for the channel's send slot, and how many attempts a send gets."""

    wait_seconds: float
    max_attempts: int
    kind: str  # the channel's: email, slack_webhook, slack_bot


class DeliveryState(BaseModel):
    """Where a delivery stands."""

    id: UUID
    is_processed: bool
    outcome: str | None
    max_attempts: int
    channel_id: UUID | None


class DeliveryContext(BaseModel):
    """What a delivery sends, and to which channel (the secret still encrypted)."""

    id: UUID
    event_type: str | None
    event_data: dict[str, Any] | None
    is_processed: bool
    send_claimed_at: datetime | None
    sent_at: datetime | None
    channel_id: UUID
    kind: ChannelKind
    email_to: str | None
    slack_channel: str | None
    secret: str | None
    is_active: bool
    owner_email: str | None


class DeliveryRow(BaseModel):
    """A delivery as the dashboard shows it."""

    id: UUID
    event_type: str | None
    event_key: str | None
    kind: str | None
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    is_processed: bool
    processed_at: datetime | None
    outcome: str | None
    created_at: datetime


class EventAudience(BaseModel):
    """Whom an event is told to: its user's channels and its organization's."""

    user_id: UUID | None
    org_id: UUID | None


async def event_owner(
    conn: Conn,
    *,
    user_id: UUID | None,
    org_id: UUID | None = None,
    entity_type: str,
    entity_id: UUID,
) -> EventAudience:
    """The user and organization an event is about: those given, else the entity's."""
    params = {
        "user_id": user_id,
        "org_id": org_id,
        "entity_type": entity_type,
        "entity_id": entity_id,
    }
    row = await (await conn.execute(Q["event_owner"], params)).fetchone()
    return EventAudience.model_validate(row) if row else EventAudience(user_id=None, org_id=None)


async def enqueue_deliveries(
    conn: Conn,
    *,
    event_key: str,
    event_type: str,
    user_id: UUID | None,
    org_id: UUID | None,
    entity_type: str,
    entity_id: UUID,
    event_data: dict[str, Any],
    max_attempts: int,
) -> list[Delivery]:
    """A row per channel that takes the event (none twice); every delivery of the event."""
    await conn.execute(
        Q["enqueue_deliveries"],
        {
            "event_key": event_key,
            "event_type": event_type,
            "user_id": user_id,
            "org_id": org_id,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "event_data": Jsonb(event_data),
            "max_attempts": max_attempts,
        },
    )
    rows = await (await conn.execute(Q["event_deliveries"], {"event_key": event_key})).fetchall()
    return [Delivery.model_validate(r) for r in rows]


async def reserve_send_slot(conn: Conn, delivery_id: UUID) -> SendSlot | None:
    """Take the channel's next send slot (None: the delivery is done or its channel gone)."""
    row = await (await conn.execute(Q["reserve_send_slot"], {"id": delivery_id})).fetchone()
    return SendSlot.model_validate(row) if row else None


async def delivery_state(conn: Conn, delivery_id: UUID) -> DeliveryState | None:
    """Where a delivery stands (None: no such row)."""
    row = await (await conn.execute(Q["delivery_state"], {"id": delivery_id})).fetchone()
    return DeliveryState.model_validate(row) if row else None


async def delivery_context(conn: Conn, delivery_id: UUID) -> DeliveryContext | None:
    """The event and channel of a delivery (None: no such row, or its channel is gone)."""
    row = await (await conn.execute(Q["delivery_context"], {"id": delivery_id})).fetchone()
    return DeliveryContext.model_validate(row) if row else None


async def record_attempt(conn: Conn, delivery_id: UUID, attempt: int) -> None:
    """An attempt starts."""
    await conn.execute(Q["record_attempt"], {"id": delivery_id, "attempt": attempt})


async def claim_send(conn: Conn, delivery_id: UUID) -> datetime | None:
    """Claim the one post of a delivery; None if it was claimed (or sent) before."""
    row = await (await conn.execute(Q["claim_send"], {"id": delivery_id})).fetchone()
    return row["send_claimed_at"] if row else None


async def release_claim(conn: Conn, delivery_id: UUID, claimed_at: datetime) -> None:
    """Give a claim back: nothing was posted."""
    await conn.execute(Q["release_claim"], {"id": delivery_id, "claimed_at": claimed_at})


async def record_sent(conn: Conn, delivery_id: UUID, external_id: str | None) -> None:
    """The delivery was sent; its row is final."""
    await conn.execute(Q["record_sent"], {"id": delivery_id, "external_id": external_id})


async def record_attempt_failed(
    conn: Conn, delivery_id: UUID, error: str, retry_seconds: float | None
) -> None:
    """An attempt failed; the next is due in ``retry_seconds`` (None: no next attempt)."""
    params = {"id": delivery_id, "error": error, "retry_seconds": retry_seconds}
    await conn.execute(Q["record_attempt_failed"], params)


async def close_delivery(
    conn: Conn, delivery_id: UUID, outcome: FinalOutcome, error: str | None
) -> None:
    """End a delivery that sent nothing (or may have): its row is final."""
    params = {"id": delivery_id, "outcome": outcome, "error": error}
    await conn.execute(Q["close_delivery"], params)


async def insert_channel(
    conn: Conn,
    *,
    channel_id: UUID,
    user_id: UUID | None,
    org_id: UUID | None,
    kind: ChannelKind,
    events: list[str] | None,
    email_to: str | None,
    slack_channel: str | None,
    secret: str | None,
    per_minute: int,
) -> None:
    """Store a channel (``secret`` encrypted by the caller)."""
    await conn.execute(
        Q["insert_channel"],
        {
            "id": channel_id,
            "user_id": user_id,
            "org_id": org_id,
            "kind": kind,
            "events": events,
            "email_to": email_to,
            "slack_channel": slack_channel,
            "secret": secret,
            "per_minute": per_minute,
        },
    )


async def list_deliveries(conn: Conn, *, user_id: UUID | None, limit: int) -> list[DeliveryRow]:
    """Deliveries, newest first (of one user, or everyone's)."""
    params = {"user_id": user_id, "limit": limit}
    rows = await (await conn.execute(Q["list_deliveries"], params)).fetchall()
    return [DeliveryRow.model_validate(r) for r in rows]


async def abandon_delivery(conn: Conn, delivery_id: UUID, reason: str) -> bool:
    """Close a delivery whose workflow ended without closing it; False if it was closed."""
    cur = await conn.execute(Q["abandon_delivery"], {"id": delivery_id, "reason": reason})
    return cur.rowcount == 1
