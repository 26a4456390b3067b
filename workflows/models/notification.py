"""Notification events, and the delivery workflow's input and result."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

EventType = Literal[
    "job.failed",
    "job.rejected",
    "job.expired",
    "generation.failed",
    "generation.nsfw",
    "sync.partial",
    "sync.failed",
    "approval.bounced",
    "approval.escalated",
    "connection.credentials_expired",
]
EntityType = Literal["job", "approval", "generation", "metric_sync", "connection"]
DeliveryOutcome = Literal["sent", "failed", "unknown"]
DELIVERY_WORKFLOW = "NotificationDelivery"  # its registered name (activities start it)


class NotificationEvent(BaseModel):
    """Something a person should hear about: what changed, on what, and for whom.

    One event is one message per channel, however often it is raised: its key (type,
    entity and ``occurrence``) makes a repeat find the deliveries of the first.
    """

    event_type: EventType
    entity_type: EntityType
    entity_id: UUID
    title: str = Field(max_length=500)
    old_status: str = Field(max_length=100)
    new_status: str = Field(max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    # None: the owner of the entity (the job's, the connection's, ...).
    user_id: UUID | None = None
    org_id: UUID | None = None  # the organization's channels too (teams, issue 27 §1)
    # Tells apart events of one type on one entity that happen again (a connection whose
    # credentials expire a second time after being renewed); None for those that cannot.
    occurrence: str | None = Field(default=None, max_length=100)

    @property
    def key(self) -> str:
        """Unique per event: a repeat of it has the same key."""
        key = f"{self.event_type}/{self.entity_id}"
        return f"{key}/{self.occurrence}" if self.occurrence else key


class NotifyResult(BaseModel):
    """How many deliveries the event has (one per channel that takes it)."""

    deliveries: int


class DeliveryInput(BaseModel):
    """Which delivery (``notification_queue`` row) to make."""

    notification_id: UUID


class DeliveryResult(BaseModel):
    """How a delivery ended."""

    notification_id: UUID
    outcome: DeliveryOutcome | Literal["skipped"]
    error: str | None = None
