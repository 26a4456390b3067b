"""Generation: one Higgsfield image job, followed to completed / failed / nsfw / cancelled.

persist → take a concurrency slot (waiting at growing intervals, or until a generation
that frees one wakes it) → submit once → follow (webhook hints, confirmed by a status
read; polling with backoff as well) → wake the user's next waiting generation → copy
results into asset storage. Every call to Higgsfield ends by the deadline; past it the
request is cancelled on Higgsfield and the generation fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.ending import despite_cancel, failure_reason, handlers_done, out_of_time
from workflows.notify import NOTIFIES, notify
from workflows.task_queues import GENERATIONS, activity_queue
from workflows.visibility import ONE_UPSERT_PER_CHANGE, upsert_changes

with workflow.unsafe.imports_passed_through():
    from activities.generation_slots import SlotActivities, WakeWaitersInput
    from activities.higgsfield import (
        CancelResult,
        CreateGenerationInput,
        FinishInput,
        GenerationActivities,
        GenerationRef,
        SlotInput,
        SubmitResult,
    )
    from workflows.models.generation import (
        SLOT_FREED,
        GenerationInput,
        GenerationResult,
        WebhookHint,
    )
    from workflows.models.notification import NotificationEvent
    from workflows.policies import DB_RETRY, DB_TIMEOUT
    from workflows.search_attributes import GENERATION_STATUS, MODEL, USER_ID

API_TIMEOUT = timedelta(seconds=60)
API_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
SUBMIT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5)
SUBMIT_HEARTBEAT = timedelta(seconds=10)  # the submit heartbeats: a dead worker is noticed
# Status reads: seconds at first, then minutes.
POLL_DELAYS = [timedelta(seconds=s) for s in (2, 3, 5, 10, 20, 30, 60, 120)]
POLL_MAX = timedelta(minutes=5)
SLOT_WAIT = timedelta(seconds=5)  # the first wait for a slot (older runs: every wait)
# Later waits double up to this: a week's wait is a few hundred checks, not 120,000; a
# generation that frees a slot wakes the waiters at once.
SLOT_WAIT_MAX = timedelta(minutes=30)
# Calls made once the deadline has passed (the cancel, copying a late result) get this long.
AFTER_DEADLINE = timedelta(minutes=10)
WAKE_RETRY = RetryPolicy(maximum_attempts=3)
HINTS_SINCE_LAST_READ = "hints-since-last-read"  # workflow.patched id
CANCEL_WAITS_FOR_SUBMIT = "cancel-waits-for-submit"  # workflow.patched id
# workflow.patched id: slot waits grow and are woken; Higgsfield calls end by the deadline
# (a call still failing then ends the generation as past its deadline); a failed cancel on
# Higgsfield is recorded instead of failing the run; the end is written even if a cancel
# arrives meanwhile. Older runs replay as they ran.
BOUNDED_BY_DEADLINE = "bounded-by-deadline"


class DeadlinePassed(Exception):
    """The generation did not finish by its deadline."""


# A request that does not validate fails the workflow (not its task, forever).
@workflow.defn(name="Generation", failure_exception_types=[ValidationError])
class Generation:
    """A Higgsfield generation whose ``generations`` row is always the truth."""

    @workflow.init
    def __init__(self, request: GenerationInput) -> None:
        self._request = request
        self._status = "pending"
        self._previous_status = "pending"  # the status before the current one
        self._request_id: str | None = None
        self._hint: WebhookHint | None = None
        self._hints = 0
        self._hints_read = 0  # hints received before the last status read
        self._submitting: workflow.ActivityHandle[SubmitResult] | None = None
        self._bounded = False  # runs with BOUNDED_BY_DEADLINE
        self._holds_slot = False
        self._slot_wakes = 0  # slot_freed signals received

    @workflow.run
    async def run(self, request: GenerationInput) -> GenerationResult:
        """Submit once and follow the request to its end."""
        # Not in a finally: a run evicted from the cache is closed outside its event loop.
        result = await self._run(request)
        if result.status in ("failed", "nsfw") and workflow.patched(NOTIFIES):
            await despite_cancel(self._tell(result))
        await handlers_done()
        return result

    async def _tell(self, result: GenerationResult) -> None:
        """Notify the user of a generation that failed or was flagged."""
        await notify(
            NotificationEvent.model_validate(
                {
                    "event_type": f"generation.{result.status}",
                    "entity_type": "generation",
                    "entity_id": self._request.generation_id,
                    "title": (self._request.prompt_text or "stored prompt")[:80],
                    "old_status": self._previous_status,
                    "new_status": result.status,
                    "reason": (result.error or "")[:2000] or None,
                    "user_id": self._request.user_id,
                }
            )
        )

    async def _run(self, request: GenerationInput) -> GenerationResult:
        created = await workflow.execute_local_activity_method(
            GenerationActivities.create_generation,
            CreateGenerationInput(
                generation_id=request.generation_id,
                user_id=request.user_id,
                prompt_id=request.prompt_id,
                prompt_text=request.prompt_text,
                model=request.model,
                settings=request.settings,
                batch_id=request.batch_id,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="persist generation",
        )
        if workflow.patched(ONE_UPSERT_PER_CHANGE):
            # Started by the app or the CLI with both (free); a batch's child upserts them.
            upsert_changes(USER_ID.value_set(str(request.user_id)), MODEL.value_set(request.model))
            # Its marker here, with the others of this task: markers are billed per task.
            workflow.patched(HINTS_SINCE_LAST_READ)
        else:
            workflow.upsert_search_attributes(
                [USER_ID.value_set(str(request.user_id)), MODEL.value_set(request.model)]
            )
        deadline = workflow.now() + request.deadline
        self._bounded = workflow.patched(BOUNDED_BY_DEADLINE)
        try:
            await self._take_slot(request.tier_limits.get(created.tier, 1), deadline)
            await self._submit(deadline)
            await self._follow(deadline)
        except DeadlinePassed:
            return await self._finishing(self._give_up(f"did not finish within {request.deadline}"))
        except (asyncio.CancelledError, ActivityError) as failure:
            if not is_cancelled_exception(failure):
                assert isinstance(failure, ActivityError)
                if self._bounded and out_of_time(failure):  # the submit, at the deadline
                    why = f"did not finish within {request.deadline}"
                    return await self._finishing(self._give_up(why))
                return await self._finishing(self._end("failed", failure_reason(failure)))
            return await self._cancel(deadline)
        await self._wake_waiters()
        assets: list[str] = []
        if self._status == "completed":
            assets = await workflow.execute_activity_method(
                GenerationActivities.save_results,
                GenerationRef(generation_id=request.generation_id),
                start_to_close_timeout=timedelta(minutes=5),
                schedule_to_close_timeout=self._time_left(deadline),
                retry_policy=API_RETRY,
                summary="copy results to asset storage",
                task_queue=activity_queue(GENERATIONS),
            )
        self._show()
        return GenerationResult(
            generation_id=request.generation_id,
            status=self._status,
            request_id=self._request_id,
            asset_ids=assets,
        )

    async def _take_slot(self, limit: int, deadline: datetime) -> None:
        self._show(f"waiting for one of {limit} concurrent slots")
        wait = SLOT_WAIT
        while not await workflow.execute_local_activity_method(
            GenerationActivities.take_slot,
            SlotInput(
                generation_id=self._request.generation_id,
                user_id=self._request.user_id,
                limit=limit,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="take a concurrency slot",
        ):
            if workflow.now() >= deadline:
                raise DeadlinePassed
            if not self._bounded:
                await workflow.sleep(SLOT_WAIT, summary="wait for a free slot")
                continue
            woken = self._slot_wakes
            until = min(deadline, workflow.now() + wait)
            await self._wait(lambda woken=woken: self._slot_wakes > woken, until, "a free slot")
            wait = min(wait * 2, SLOT_WAIT_MAX)
        self._holds_slot = True
        self._set_status("submitting")

    async def _wake_waiters(self) -> None:
        """The row is final: its slot is free. Wake the user's next waiting generations."""
        if not (self._bounded and self._holds_slot):
            return
        self._holds_slot = False
        try:
            await workflow.execute_local_activity_method(
                SlotActivities.wake_slot_waiters,
                WakeWaitersInput(
                    generation_id=self._request.generation_id, user_id=self._request.user_id
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=WAKE_RETRY,
                summary="wake the next waiting generation",
            )
        except ActivityError as failure:  # they check again on their own, later
            workflow.logger.warning("waiting generations not woken", exc_info=failure)

    def _time_left(self, deadline: datetime) -> timedelta | None:
        """How long a call to Higgsfield may take, retries included (None: older runs)."""
        if not self._bounded:
            return None
        return max(deadline - workflow.now(), AFTER_DEADLINE)

    async def _finishing(self, ending: Coroutine[Any, Any, GenerationResult]) -> GenerationResult:
        """Write the end even if a cancel arrives meanwhile: the row must be final."""
        return await (despite_cancel(ending) if self._bounded else ending)

    async def _submit(self, deadline: datetime) -> None:
        # A cancel that arrives while the submit runs (or in the same task as its result)
        # must not lose a request Higgsfield accepted: the submit is shielded from it and
        # _cancel waits for its outcome. Older runs let the cancel interrupt the submit.
        shielded = workflow.patched(CANCEL_WAITS_FOR_SUBMIT)
        submitting = workflow.start_activity_method(
            GenerationActivities.submit_generation,
            GenerationRef(generation_id=self._request.generation_id),
            start_to_close_timeout=API_TIMEOUT,
            heartbeat_timeout=SUBMIT_HEARTBEAT,
            schedule_to_close_timeout=self._time_left(deadline),
            retry_policy=SUBMIT_RETRY,
            summary="submit to Higgsfield (once)",
            task_queue=activity_queue(GENERATIONS),
        )
        if shielded:
            self._submitting = submitting
            submitted = await asyncio.shield(submitting)
        else:
            submitted = await submitting
        if submitted.outcome == "submitted":
            self._request_id = submitted.request_id
        else:
            # An earlier attempt may have created the request: only its webhook can say.
            self._show("submit outcome unknown: waiting for Higgsfield's webhook")
            if not await self._wait(lambda: self._hint is not None, deadline, "webhook"):
                raise DeadlinePassed
            assert self._hint is not None
            self._request_id = self._hint.request_id
            await workflow.execute_local_activity_method(
                GenerationActivities.adopt_request,
                GenerationRef(
                    generation_id=self._request.generation_id, request_id=self._request_id
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="record request id from webhook",
            )
        self._set_status("queued")

    async def _follow(self, deadline: datetime) -> None:
        polls = 0
        while self._status not in ("completed", "failed", "nsfw", "cancelled"):
            delay = POLL_DELAYS[polls] if polls < len(POLL_DELAYS) else POLL_MAX
            # A hint that came while submitting (or during the last read) means: read now.
            # Older runs waited for the next poll; they replay unchanged.
            seen = self._hints_read if workflow.patched(HINTS_SINCE_LAST_READ) else self._hints
            self._show(f"next status read within {delay}")
            until = min(deadline, workflow.now() + delay)
            await self._wait(lambda seen=seen: self._hints > seen, until, "poll")
            if workflow.now() >= deadline:
                raise DeadlinePassed
            polls += 1
            self._hints_read = self._hints
            try:
                checked = await workflow.execute_activity_method(
                    GenerationActivities.check_generation,
                    self._ref(),
                    start_to_close_timeout=API_TIMEOUT,
                    schedule_to_close_timeout=self._time_left(deadline),
                    retry_policy=API_RETRY,
                    summary="read status from Higgsfield",
                    task_queue=activity_queue(GENERATIONS),
                )
            except ActivityError as failure:
                if self._bounded and out_of_time(failure):
                    raise DeadlinePassed from None  # still failing at the deadline
                raise
            self._set_status(checked.status)

    async def _wait(self, done: Any, until: datetime, what: str) -> bool:
        remaining = until - workflow.now()
        if remaining <= timedelta(0):
            return bool(done())
        try:
            await workflow.wait_condition(done, timeout=remaining, timeout_summary=what)
        except TimeoutError:
            return False
        return True

    async def _cancel(self, deadline: datetime) -> GenerationResult:
        """A cancel was requested: end here if Higgsfield never got the request, else cancel
        it there too, or, if Higgsfield refuses (it already runs), follow it to its end."""
        why = await self._submit_settled()
        if self._request_id is None:
            return await self._end("cancelled", why)
        outcome = await self._cancel_on_higgsfield(deadline)
        if outcome.cancelled:
            await self._end("cancelled", "cancelled on request (and on Higgsfield)")
            raise asyncio.CancelledError
        return await self._follow_uncancelled(deadline, outcome.reason)

    async def _submit_settled(self) -> str:
        """Let a submit in flight finish, so a request Higgsfield accepted is not lost;
        why the generation ends if it still has no request id."""
        if self._request_id is not None or self._submitting is None:
            return "cancelled before submission"
        try:
            submitted = await self._submitting
        except ActivityError as failure:
            submitted = SubmitResult(outcome="unknown")
            why = f"cancelled; the submit failed: {failure_reason(failure)}"
        else:
            why = "cancelled while the submit's outcome was unknown"
        if submitted.outcome == "submitted":
            self._request_id = submitted.request_id
            self._set_status("queued")
        return why

    async def _cancel_on_higgsfield(self, deadline: datetime) -> CancelResult:
        """Ask Higgsfield to cancel the request; if that call fails for good, the
        generation ends cancelled (runs before BOUNDED_BY_DEADLINE fail instead)."""
        try:
            return await workflow.execute_activity_method(
                GenerationActivities.cancel_on_higgsfield,
                self._ref(),
                start_to_close_timeout=API_TIMEOUT,
                schedule_to_close_timeout=self._time_left(deadline),
                retry_policy=API_RETRY,
                summary="cancel on Higgsfield",
                task_queue=activity_queue(GENERATIONS),
            )
        except ActivityError as failure:
            if not self._bounded:
                raise
            failed = failure_reason(failure)
            why = f"cancelled on request; cancelling it on Higgsfield failed: {failed}"
            await self._end("cancelled", why)
            raise asyncio.CancelledError from None

    async def _follow_uncancelled(
        self, deadline: datetime, refused: str | None
    ) -> GenerationResult:
        """Higgsfield refused the cancel: say so on the row and follow it to its end."""
        await workflow.execute_local_activity_method(
            GenerationActivities.note_cancel_refused,
            FinishInput(
                generation_id=self._request.generation_id,
                status="cancelled",
                error_message=f"cancel requested but Higgsfield refused it: {refused}",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="record why it could not be cancelled",
        )
        try:
            await self._follow(deadline)
        except DeadlinePassed:
            return await self._give_up(f"did not finish within {self._request.deadline}")
        except ActivityError as failure:
            if not self._bounded:
                raise
            return await self._end("failed", failure_reason(failure))
        await self._wake_waiters()
        return GenerationResult(
            generation_id=self._request.generation_id,
            status=self._status,
            request_id=self._request_id,
            error=refused,
        )

    async def _give_up(self, why: str) -> GenerationResult:
        if self._request_id is not None:
            try:
                outcome = await workflow.execute_activity_method(
                    GenerationActivities.cancel_on_higgsfield,
                    self._ref(),
                    start_to_close_timeout=API_TIMEOUT,
                    schedule_to_close_timeout=AFTER_DEADLINE if self._bounded else None,
                    retry_policy=API_RETRY,
                    summary="cancel on Higgsfield (deadline)",
                    task_queue=activity_queue(GENERATIONS),
                )
            except ActivityError as failure:
                if not self._bounded:
                    raise
                return await self._end(
                    "failed",
                    f"{why}; cancelling it on Higgsfield failed: {failure_reason(failure)}",
                )
            why += (
                "; cancelled on Higgsfield"
                if outcome.cancelled
                else (f"; Higgsfield could not cancel it: {outcome.reason}")
            )
        return await self._end("failed", why)

    async def _end(self, status: Literal["failed", "cancelled"], why: str) -> GenerationResult:
        await workflow.execute_local_activity_method(
            GenerationActivities.finish_generation,
            FinishInput(
                generation_id=self._request.generation_id, status=status, error_message=why
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"generation {status}",
        )
        self._set_status(status)
        self._show(why)
        await self._wake_waiters()
        return GenerationResult(
            generation_id=self._request.generation_id,
            status=status,
            request_id=self._request_id,
            error=why,
        )

    def _ref(self) -> GenerationRef:
        return GenerationRef(generation_id=self._request.generation_id, request_id=self._request_id)

    def _set_status(self, status: str) -> None:
        if status != self._status or status == "submitting":
            if status != self._status:
                self._previous_status = self._status
            self._status = status
            workflow.upsert_search_attributes([GENERATION_STATUS.value_set(status)])

    def _show(self, note: str | None = None) -> None:
        prompt = (self._request.prompt_text or "stored prompt")[:80]
        details = f"**{prompt}**\n\nStatus: {self._status}"
        if self._request_id:
            details += f" · Higgsfield request {self._request_id}"
        if note:
            details += f"\n\n{note}"
        workflow.set_current_details(details)

    @workflow.signal(
        name="higgsfield_webhook",
        description="A webhook from Higgsfield arrived (a hint: the status is read to confirm).",
    )
    def higgsfield_webhook(self, hint: WebhookHint) -> None:
        """Wake the workflow to read the status now."""
        if self._request_id not in (None, hint.request_id):
            workflow.logger.warning("webhook for another request ignored")
            return
        self._hint = hint
        self._hints += 1

    @workflow.signal(
        name=SLOT_FREED,
        description="A generation of the same user freed a concurrency slot: try to take it.",
    )
    def slot_freed(self) -> None:
        """Wake the wait for a slot."""
        self._slot_wakes += 1

    @workflow.query(name="status", description="The generation's status and Higgsfield request.")
    def status(self) -> GenerationResult:
        """Where the generation is."""
        return GenerationResult(
            generation_id=self._request.generation_id,
            status=self._status,
            request_id=self._request_id,
        )
