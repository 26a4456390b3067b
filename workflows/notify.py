"""Telling people: a workflow raises a notification event through one activity, after
its end is written. Best effort: a notification that cannot be raised is logged and
never changes how the run ends. A cancel of the run that arrives while the event is
raised is never swallowed: mid-run it propagates (the run ends cancelled); the calls at
a run's end shield themselves with ``despite_cancel``."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.ending import failure_reason

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from workflows.models.notification import NotificationEvent

NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=10)
# workflow.patched id: runs started with it raise notification events (job failed,
# rejected or expired; generation failed or nsfw; sync partial or failed). Older runs
# replay without them.
NOTIFIES = "notifies-on-events"


async def notify(event: NotificationEvent) -> None:
    """Raise ``event``: its deliveries are recorded and started (each a workflow)."""
    try:
        await workflow.execute_activity_method(
            NotificationActivities.notify,
            event,
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            summary=f"notify {event.event_type}",
        )
    except ActivityError as failure:
        if is_cancelled_exception(failure):
            raise  # the run's cancel, delivered here: obeyed (end-of-run calls shield it)
        workflow.logger.warning(
            "notification not raised",
            extra={"event": event.event_type, "reason": failure_reason(failure)},
        )
