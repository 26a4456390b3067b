"""AgentJob: an assistant works for a user in a remote browser, asking before risky steps.

persist the job → open the browser session → recall memories → for each step: (gate if
risky) → run → record; steps may also arrive while it runs (``add_steps``) → release the
session → store an outcome memory → persist how it ended.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows.approval_gate import ApprovalGateHost, GateFailed
from workflows.ending import despite_cancel, error_type, failure_reason, handlers_done
from workflows.notify import NOTIFIES, notify
from workflows.task_queues import AGENT_JOBS, activity_queue
from workflows.visibility import ONE_UPSERT_PER_CHANGE, upsert_changes

with workflow.unsafe.imports_passed_through():
    # Shared with the activities: one class identity inside and outside the sandbox.
    from activities.browser import (
        BrowserActivities,
        OpenSessionInput,
        ReleaseSessionInput,
        RunStepInput,
        ScreenshotInput,
    )
    from activities.jobs import (
        AddStepsInput,
        CreateJobInput,
        FinishJobInput,
        JobActivities,
        SessionReservation,
        StepRecordInput,
    )
    from activities.memory import MemoryActivities, RecallInput, StoreMemoryInput
    from workflows.models.agent_job import (
        MAX_STEPS,
        AddStepsRequest,
        AgentJobInput,
        AgentJobResult,
        JobOutcome,
        JobProgress,
    )
    from workflows.models.approval import ApprovalRequest, GateOutcome
    from workflows.models.notification import NotificationEvent
    from workflows.models.steps import Step, StepResult
    from workflows.policies import DB_RETRY, DB_TIMEOUT
    from workflows.search_attributes import AWAITING_SINCE, JOB_STATUS, PLATFORM, USER_ID

BROWSER_TIMEOUT = timedelta(minutes=2)
# Browser activities heartbeat: a dead worker's step is retried within this, and a
# cancelled job's step is interrupted.
BROWSER_HEARTBEAT = timedelta(seconds=10)
BROWSER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
# Opening the session waits for one of Steel's concurrent sessions (each job holds its
# own while it waits at a gate): its 429 is a benign wait of up to 30 s before the next
# attempt (activities/browser.py), for up to this long; then the job fails with the reason.
# Retry options are not replayed (no command differs): running jobs take them as they are.
SESSION_OPEN_DEADLINE = timedelta(hours=1)
SESSION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # bounded by SESSION_OPEN_DEADLINE
)
MEMORY_TIMEOUT = timedelta(seconds=20)
MEMORY_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=5))
MAX_SESSION_RECREATIONS = 2
# workflow.patched id. Runs started with it: the browser release is best effort (reported
# in the result), the end is persisted even if a cancel arrives meanwhile, a failed gate
# fails the job with its reason, add_steps queues its steps before it writes them, and the
# run waits for its handlers before it ends. Older runs replay as they ran.
ROWS_ALWAYS_FINAL = "job-rows-always-final"


class JobStopped(Exception):
    """A rejected or expired gate under the ``stop`` policy."""


# A request that does not validate fails the workflow (not its task, forever).
@workflow.defn(name="AgentJob", failure_exception_types=[ValidationError])
class AgentJob(ApprovalGateHost):
    """Durable browser work for a user, gated by approvals before risky steps."""

    @workflow.init
    def __init__(self, request: AgentJobInput) -> None:
        self._init_gates()
        self._request = request
        self._steps: dict[int, Step] = dict(enumerate(request.steps))
        self._planned = len(request.steps)
        self._results: list[StepResult] = []
        self._status = "pending"
        self._waiting_on: str | None = None
        self._session_id: str | None = None
        self._memories: list[str] = []
        self._finish_requested = False
        self._closing = False
        self._unwritten: set[int] = set()  # steps queued by add_steps, rows not yet written
        self._warnings: list[str] = []
        self._one_upsert = False  # ONE_UPSERT_PER_CHANGE: one upsert command per state change

    @workflow.run
    async def run(self, request: AgentJobInput) -> AgentJobResult:
        """Run the job to completion, failure, rejection or cancellation."""
        final_rows = workflow.patched(ROWS_ALWAYS_FINAL)
        self._one_upsert = workflow.patched(ONE_UPSERT_PER_CHANGE)
        platform = await self._persist_start()
        if self._one_upsert:  # the user id came with the start; the status with the platform
            upsert_changes(
                JOB_STATUS.value_set("running"),
                USER_ID.value_set(str(request.user_id)),
                PLATFORM.value_set(platform),
            )
        else:
            workflow.upsert_search_attributes(
                [USER_ID.value_set(str(request.user_id)), PLATFORM.value_set(platform)]
            )
        outcome: JobOutcome = "completed"
        reason: str | None = None
        try:
            await self._open_browser(recreate=False)
            await self._recall()
            await self._work()
        except (asyncio.CancelledError, ActivityError) as failure:
            if not is_cancelled_exception(failure):
                assert isinstance(failure, ActivityError)
                outcome, reason = "failed", failure_reason(failure)
            else:
                # An operator cancelled the job (an in-flight activity surfaces it as an
                # ActivityError caused by CancelledError): clean up, end as cancelled.
                await self._close("cancelled", "cancelled by an operator")
                if final_rows:
                    await handlers_done()
                raise asyncio.CancelledError from None
        except JobStopped as stop:
            outcome, reason = "cancelled", str(stop)
        except GateFailed as gate:  # only runs with ROWS_ALWAYS_FINAL raise it
            outcome, reason = "failed", str(gate)
            workflow.upsert_search_attributes([AWAITING_SINCE.value_unset()])
        if final_rows:
            await despite_cancel(self._close(outcome, reason))
            if outcome == "failed" and workflow.patched(NOTIFIES):
                await despite_cancel(self._tell("job.failed", "running", "failed", reason))
            await handlers_done()
        else:
            await self._close(outcome, reason)
        if outcome == "failed":
            raise ApplicationError(f"job failed: {reason}", type="JobFailed", non_retryable=True)
        return AgentJobResult(
            job_id=request.job_id,
            status=outcome,
            reason=reason,
            steps=self._results,
            warnings=self._warnings,
        )

    async def _persist_start(self) -> str:
        started = await workflow.execute_local_activity_method(
            JobActivities.create_job,
            CreateJobInput(
                job_id=self._request.job_id,
                user_id=self._request.user_id,
                workspace_id=self._request.workspace_id,
                title=self._request.title,
                instruction=self._request.instruction,
                steps=self._request.steps,
                org_id=self._request.org_id,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="persist job",
        )
        self._browser_settings = started.browser_settings
        if self._one_upsert:
            self._status = "running"  # upserted with the platform
        else:
            self._set_status("running")
        return started.platform

    async def _open_browser(self, *, recreate: bool) -> None:
        session_id = await workflow.execute_local_activity_method(
            JobActivities.reserve_browser_session,
            SessionReservation(
                job_id=self._request.job_id, session_id=str(workflow.uuid4()), replace=recreate
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="reserve browser session id",
        )
        self._session_id = session_id
        await workflow.execute_activity_method(
            BrowserActivities.open_session,
            OpenSessionInput(
                job_id=self._request.job_id,
                session_id=session_id,
                browser_settings=self._browser_settings,
            ),
            start_to_close_timeout=BROWSER_TIMEOUT,
            schedule_to_close_timeout=SESSION_OPEN_DEADLINE,
            heartbeat_timeout=BROWSER_HEARTBEAT,
            retry_policy=SESSION_RETRY,
            summary="open browser session",
            task_queue=activity_queue(AGENT_JOBS),
        )

    async def _recall(self) -> None:
        try:
            recalled = await workflow.execute_activity_method(
                MemoryActivities.recall_memories,
                RecallInput(
                    user_id=self._request.user_id,
                    query=f"{self._request.title}\n{self._request.instruction}",
                ),
                start_to_close_timeout=MEMORY_TIMEOUT,
                retry_policy=MEMORY_RETRY,
                summary="recall memories",
                task_queue=activity_queue(AGENT_JOBS),
            )
            self._memories = recalled.memories
        except ActivityError as failure:
            workflow.logger.warning("memory recall failed; continuing without", exc_info=failure)

    async def _work(self) -> None:
        index = 0
        while True:
            self._show_progress()
            if index in self._steps:
                if index in self._unwritten:  # added a moment ago: its row comes first
                    await workflow.wait_condition(lambda i=index: i not in self._unwritten)  # type: ignore[misc]
                await self._run_step(index, self._steps[index])
                index += 1
                continue
            if not self._request.keep_open or self._finish_requested:
                return
            self._waiting_on = "more steps (add_steps) or the finish signal"
            self._show_progress()
            try:
                await workflow.wait_condition(
                    lambda i=index: i in self._steps or self._finish_requested,  # type: ignore[misc]
                    timeout=self._request.idle_timeout,
                    timeout_summary="idle timeout",
                )
            except TimeoutError:
                return
            finally:
                self._waiting_on = None

    async def _run_step(self, index: int, step: Step) -> None:
        if step.risk != "none" and not await self._approved(index, step):
            return
        for attempt in range(MAX_SESSION_RECREATIONS + 1):
            try:
                result = await workflow.execute_activity_method(
                    BrowserActivities.run_step,
                    RunStepInput(
                        job_id=self._request.job_id,
                        session_id=self._session_id or "",
                        step_index=index,
                        step=step,
                    ),
                    start_to_close_timeout=BROWSER_TIMEOUT,
                    heartbeat_timeout=BROWSER_HEARTBEAT,
                    retry_policy=BROWSER_RETRY,
                    summary=f"step {index + 1}: {step.description}"[:120],
                    task_queue=activity_queue(AGENT_JOBS),
                )
                self._results.append(result)
                return
            except ActivityError as failure:
                gone = error_type(failure) == "BrowserSessionGone"
                if not gone or attempt == MAX_SESSION_RECREATIONS:
                    raise
                workflow.logger.warning("browser session gone; opening a new one")
                await self._open_browser(recreate=True)

    async def _approved(self, index: int, step: Step) -> bool:
        """Ask before a risky step: True to run it, False when it was skipped (not approved,
        under the ``skip`` policy); ``JobStopped`` under ``stop``."""
        outcome = await self._ask(index, step, await self._screenshot())
        if outcome.approved:
            return True
        why = _not_approved(index, outcome)
        if outcome.status in ("rejected", "expired") and workflow.patched(NOTIFIES):
            event_type = "job.rejected" if outcome.status == "rejected" else "job.expired"
            await self._tell(
                event_type, "waiting_approval", outcome.status, why, approval=outcome.approval_id
            )
        if self._request.approval.on_rejection == "stop":
            raise JobStopped(why)
        await self._skip(index, why)
        return False

    async def _screenshot(self) -> str:
        """The page as it is before the step, for the approver; its blob id."""
        return await workflow.execute_activity_method(
            BrowserActivities.capture_screenshot,
            ScreenshotInput(session_id=self._session_id or "", blob_id=workflow.uuid4()),
            start_to_close_timeout=BROWSER_TIMEOUT,
            heartbeat_timeout=BROWSER_HEARTBEAT,
            retry_policy=BROWSER_RETRY,
            summary="screenshot for approval",
            task_queue=activity_queue(AGENT_JOBS),
        )

    async def _ask(self, index: int, step: Step, blob_id: str) -> GateOutcome:
        """Wait at an approval gate for the step, the job shown as waiting meanwhile; a
        cancelled gate cancels the job."""
        self._waiting_on = f"approval of step {index + 1}: {step.description}"
        self._set_status("waiting_approval", AWAITING_SINCE.value_set(workflow.now()))
        self._show_progress()
        try:
            outcome = await self.open_gate(
                ApprovalRequest(
                    job_id=self._request.job_id,
                    action_type=step.risk,
                    description=step.description,
                    screenshot_blob_id=UUID(blob_id),
                    step_index=index,
                ),
                self._request.approval,
            )
        finally:
            self._waiting_on = None
        if outcome.status == "cancelled":
            workflow.upsert_search_attributes([AWAITING_SINCE.value_unset()])
            raise asyncio.CancelledError
        self._set_status("running", AWAITING_SINCE.value_unset())
        return outcome

    async def _skip(self, index: int, why: str) -> None:
        """Record a step that will not run, and why."""
        skipped = StepResult(step_index=index, status="skipped", error=why)
        await workflow.execute_local_activity_method(
            JobActivities.skip_step,
            StepRecordInput(job_id=self._request.job_id, result=skipped),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"skip step {index + 1}",
        )
        self._results.append(skipped)

    async def _close(self, outcome: JobOutcome, reason: str | None) -> None:
        """Release the browser, remember the outcome, persist the end. Runs on every path."""
        self._closing = True
        if self._session_id:
            try:
                await workflow.execute_activity_method(
                    BrowserActivities.release_session,
                    ReleaseSessionInput(session_id=self._session_id),
                    start_to_close_timeout=BROWSER_TIMEOUT,
                    heartbeat_timeout=BROWSER_HEARTBEAT,
                    retry_policy=BROWSER_RETRY,
                    summary="release browser session",
                    task_queue=activity_queue(AGENT_JOBS),
                )
            except ActivityError as failure:
                if not workflow.patched(ROWS_ALWAYS_FINAL):
                    raise
                # Best effort, like the memory: Steel ends an idle session at its timeout.
                warning = (
                    f"browser session {self._session_id} was not released: "
                    f"{failure_reason(failure)}"
                )
                workflow.logger.warning(warning)
                self._warnings.append(warning)
        await self._remember(outcome, reason)
        if self._unwritten:  # steps add_steps still writes would land after the job's end
            await workflow.wait_condition(lambda: not self._unwritten)
        result: dict[str, object] = {"steps": [r.model_dump(mode="json") for r in self._results]}
        if self._warnings:
            result["warnings"] = self._warnings
        await workflow.execute_local_activity_method(
            JobActivities.finish_job,
            FinishJobInput(
                job_id=self._request.job_id,
                status=outcome,
                reason=reason,
                result=result,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"job {outcome}",
        )
        self._set_status(outcome)
        self._show_progress()

    async def _remember(self, outcome: JobOutcome, reason: str | None) -> None:
        done = sum(1 for r in self._results if r.status == "completed")
        text = f"Job '{self._request.title}' {outcome}: {done} of {self._planned} steps done."
        if reason:
            text += f" Reason: {reason}"
        try:
            await workflow.execute_activity_method(
                MemoryActivities.store_outcome_memory,
                StoreMemoryInput(
                    user_id=self._request.user_id, job_id=self._request.job_id, content=text
                ),
                start_to_close_timeout=MEMORY_TIMEOUT,
                retry_policy=MEMORY_RETRY,
                summary="store outcome memory",
                task_queue=activity_queue(AGENT_JOBS),
            )
        except ActivityError as failure:
            workflow.logger.warning("storing the outcome memory failed", exc_info=failure)

    async def _tell(
        self, event_type: str, old: str, new: str, reason: str | None, approval: UUID | None = None
    ) -> None:
        """Notify the job's owner (a gate's outcome is an event of its approval)."""
        await notify(
            NotificationEvent.model_validate(
                {
                    "event_type": event_type,
                    "entity_type": "approval" if approval else "job",
                    "entity_id": approval or self._request.job_id,
                    "title": self._request.title[:500],
                    "old_status": old,
                    "new_status": new,
                    "reason": (reason or "")[:2000] or None,
                    "user_id": self._request.user_id,
                }
            )
        )

    def _set_status(self, status: str, *also: SearchAttributeUpdate) -> None:
        """The status and what changes with it: one upsert command (older runs: one each)."""
        self._status = status
        if self._one_upsert:
            upsert_changes(JOB_STATUS.value_set(status), *also)
            return
        # Older runs: one command each; the status before a gate's attribute, after it
        # when the gate closes.
        commands = [[JOB_STATUS.value_set(status)], *([update] for update in also)]
        for command in commands if status == "waiting_approval" else reversed(commands):
            workflow.upsert_search_attributes(command)

    def _show_progress(self) -> None:
        done = len(self._results)
        lines = [
            f"**{self._request.title}**",
            f"Status: {self._status} · step {min(done + 1, self._planned)} of {self._planned}",
        ]
        if self._waiting_on:
            lines.append(f"Waiting on: {self._waiting_on}")
            gate = self.open_gate_state()
            if gate is not None and (gate.quorum > 1 or gate.escalations):
                lines.append(f"Approvals: {gate.progress}; escalated {gate.escalations} time(s)")
        workflow.set_current_details("\n\n".join(lines))

    def _gate_changed(self) -> None:
        self._show_progress()

    @workflow.update(
        name="add_steps",
        description="Append steps to a running job; returns their results once they ran.",
    )
    async def add_steps(self, request: AddStepsRequest) -> list[StepResult]:
        """Persist and queue the steps, then wait for their results."""
        first = self._planned
        self._planned += len(request.steps)
        wanted = range(first, first + len(request.steps))
        # Queue the steps before writing them: the job must not end while they are being
        # written (the last step may finish meanwhile); it runs them once they are.
        queue_first = workflow.patched(ROWS_ALWAYS_FINAL)
        if queue_first:
            self._unwritten.update(wanted)
            for offset, step in enumerate(request.steps):
                self._steps[first + offset] = step
        await workflow.execute_local_activity_method(
            JobActivities.add_job_steps,
            AddStepsInput(job_id=self._request.job_id, first_index=first, steps=request.steps),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"add {len(request.steps)} steps",
        )
        if queue_first:
            self._unwritten.difference_update(wanted)
        else:
            for offset, step in enumerate(request.steps):
                self._steps[first + offset] = step
        await workflow.wait_condition(
            lambda: (
                self._closing or all(any(r.step_index == i for r in self._results) for i in wanted)
            )
        )
        return [r for r in self._results if r.step_index in wanted]

    @add_steps.validator
    def _validate_add_steps(self, request: AddStepsRequest) -> None:
        if self._closing or self._status in ("completed", "failed", "cancelled"):
            raise ApplicationError("the job has finished; start a new job", type="JobFinished")
        if self._planned + len(request.steps) > MAX_STEPS:
            raise ApplicationError(f"a job has at most {MAX_STEPS} steps", type="TooManySteps")

    @workflow.signal(name="finish", description="No more steps will come: finish the job.")
    def finish(self) -> None:
        """End a keep_open job once its queued steps are done."""
        self._finish_requested = True

    @workflow.query(name="progress", description="The job's status, steps and what it waits on.")
    def progress(self) -> JobProgress:
        """Where the job is."""
        return JobProgress(
            job_id=self._request.job_id,
            status=self._status,
            steps_done=len(self._results),
            steps_planned=self._planned,
            waiting_on=self._waiting_on,
            browser_session_id=self._session_id,
            memories_recalled=len(self._memories),
            steps=self._results,
        )


def _not_approved(index: int, outcome: GateOutcome) -> str:
    """Why a step does not run: who rejected it (with their note), or that it expired."""
    why = f"step {index + 1} {outcome.status}" + (
        f" by {outcome.decided_by}" if outcome.decided_by else ""
    )
    if outcome.note:
        why += f": {outcome.note}"
    return why
