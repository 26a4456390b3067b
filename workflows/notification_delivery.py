"""NotificationDelivery: one event to one channel, sent once, its record always final.

take the channel's send slot (its rate limit: wait for it) → send, with Temporal's
retries and backoff → the row says sent, failed (refused, or out of attempts) or
unknown (a Slack post that may have been made is never made again).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.ending import despite_cancel, error_type, failure_reason, handlers_done
from workflows.task_queues import EMAIL, activity_queue

with workflow.unsafe.imports_passed_through():
    from activities.notifications import (
        OUTCOME_UNKNOWN,
        REFUSED,
        CloseDeliveryInput,
        DeliverInput,
        NotificationActivities,
    )
    from workflows.models.notification import (
        DELIVERY_WORKFLOW,
        DeliveryInput,
        DeliveryResult,
    )
    from workflows.policies import DB_RETRY, DB_TIMEOUT

SEND_TIMEOUT = timedelta(seconds=20)  # Slack's and Resend's clients give up after 10-30 s
RETRY_INITIAL = timedelta(seconds=10)
RETRY_MAX = timedelta(minutes=10)  # 5 attempts: ~2.5 min of backoff, within Resend's 24 h key


@workflow.defn(name=DELIVERY_WORKFLOW, failure_exception_types=[ValidationError])
class NotificationDelivery:
    """Sends one notification_queue row's message to its channel."""

    @workflow.run
    async def run(self, request: DeliveryInput) -> DeliveryResult:
        """Wait for the channel's slot, send, and make the row final whatever happens."""
        result = await self._run(request)
        await handlers_done()
        return result

    async def _run(self, request: DeliveryInput) -> DeliveryResult:
        slot = await workflow.execute_local_activity_method(
            NotificationActivities.reserve_send_slot,
            request,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="take the channel's send slot",
        )
        if slot.done:
            return DeliveryResult(notification_id=request.notification_id, outcome="skipped")
        try:
            if slot.wait_seconds > 0:
                workflow.set_current_details(f"Rate limited: sending in {slot.wait_seconds:.0f} s")
                await workflow.sleep(
                    timedelta(seconds=slot.wait_seconds), summary="the channel's rate limit"
                )
            workflow.set_current_details("Sending")
            await workflow.execute_activity_method(
                NotificationActivities.deliver_notification,
                DeliverInput(
                    notification_id=request.notification_id,
                    retry_initial_seconds=RETRY_INITIAL.total_seconds(),
                    retry_max_seconds=RETRY_MAX.total_seconds(),
                    max_attempts=slot.max_attempts,
                ),
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=RetryPolicy(
                    initial_interval=RETRY_INITIAL,
                    backoff_coefficient=2.0,
                    maximum_interval=RETRY_MAX,
                    maximum_attempts=slot.max_attempts,
                    non_retryable_error_types=[REFUSED, OUTCOME_UNKNOWN],
                ),
                summary="send the notification (once)",
                # An email shares Resend's rate limit with the approval emails; a Slack
                # post runs on the workflow's own queue.
                task_queue=activity_queue(EMAIL) if slot.channel_kind == "email" else None,
            )
        except (asyncio.CancelledError, ActivityError) as failure:
            if is_cancelled_exception(failure):
                await despite_cancel(self._close(request, "failed", "cancelled"))
                raise asyncio.CancelledError from None
            assert isinstance(failure, ActivityError)
            outcome = "unknown" if error_type(failure) == OUTCOME_UNKNOWN else "failed"
            why = failure_reason(failure)
            await despite_cancel(self._close(request, outcome, why))
            workflow.set_current_details(f"{outcome.capitalize()}: {why}")
            return DeliveryResult(
                notification_id=request.notification_id, outcome=outcome, error=why
            )
        workflow.set_current_details("Sent")
        return DeliveryResult(notification_id=request.notification_id, outcome="sent")

    async def _close(self, request: DeliveryInput, outcome: str, why: str) -> None:
        await workflow.execute_local_activity_method(
            NotificationActivities.close_notification,
            CloseDeliveryInput(
                notification_id=request.notification_id,
                outcome="unknown" if outcome == "unknown" else "failed",
                error=why,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"notification {outcome}",
        )
