"""Vendor families: which kinds of work this process can do with the keys it was given.

A worker without Steel keys still starts: it runs generations (each user's own
Higgsfield key) and metric syncs (each connection's own token), and refuses agent jobs
with a clear, logged reason. Every worker on a task queue should have the same keys:
an activity lands on whichever worker polls first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from workers.logging import get_logger
from workers.settings import Settings

log = get_logger("workers.families")


@dataclass(frozen=True)
class Family:
    """A kind of work and the settings it cannot run without."""

    name: str
    label: str  # how a reason names it
    needs: tuple[str, ...]


FAMILIES = (
    # Browser sessions (Steel), memories (Supermemory), approval emails (Resend).
    Family("agent_jobs", "agent jobs", ("steel_api_key", "supermemory_api_key", "resend_api_key")),
    Family("approval_emails", "approval emails", ("resend_api_key",)),
    Family("generations", "generations", ()),  # Higgsfield keys are per user
    Family("metric_syncs", "metric syncs", ()),  # tokens are per connection
    # Notifications: email through Resend; Slack (slack_sdk) with each channel's own
    # webhook URL or bot token. A delivery to a disabled family's channel fails with
    # the reason on its notification_queue row.
    Family("email_notifications", "email notifications", ("resend_api_key",)),
    Family("slack_notifications", "Slack notifications", ()),
)


@dataclass(frozen=True)
class FamilyStatus:
    """Whether a family runs here, and if not, the one line that says why."""

    name: str
    enabled: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, **({"reason": self.reason} if self.reason else {})}


def family_statuses(settings: Settings) -> list[FamilyStatus]:
    """Every family, enabled or with the reason it is not."""
    statuses = []
    for family in FAMILIES:
        missing = [name.upper() for name in family.needs if getattr(settings, name) is None]
        if not missing:
            statuses.append(FamilyStatus(family.name, True))
            continue
        verb = "is" if len(missing) == 1 else "are"
        reason = (
            f"{family.label} are disabled on this worker: {' and '.join(missing)} {verb} not set"
        )
        statuses.append(FamilyStatus(family.name, False, reason))
    return statuses


def status_of(settings: Settings, name: str) -> FamilyStatus:
    """One family's status."""
    return next(s for s in family_statuses(settings) if s.name == name)


def refusing_activity(
    reason: str, refused: Sequence[str], no_ops: Sequence[str] = ()
) -> Callable[..., Any]:
    """A dynamic activity standing in for a disabled family's activities.

    Each of ``refused`` fails at once, non-retryably, with ``reason`` (so the job ends
    failed with it instead of waiting for a worker that will never come); each of
    ``no_ops`` succeeds doing nothing (releasing a browser session that was never opened).
    Any other name fails retryably, as the SDK does for an activity it does not know, so a
    worker with newer code can still take it.
    """
    refused_names, no_op_names = frozenset(refused), frozenset(no_ops)

    @activity.defn(dynamic=True)
    async def disabled_family(args: Sequence[RawValue]) -> None:
        name = activity.info().activity_type
        if name in no_op_names:
            log.warning("nothing to do: family disabled", reason=reason)
            return None
        if name in refused_names:
            log.warning("activity refused", reason=reason)
            raise ApplicationError(reason, type="FamilyDisabled", non_retryable=True)
        raise ApplicationError(
            f"activity {name} is not registered on this worker", type="NotFoundError"
        )

    return disabled_family
