"""One row the app inserted or asked to cancel: start, refuse or cancel its workflow.

Each action runs in one transaction that holds the row's lock while it calls Temporal,
so a second dispatcher skips the row instead of acting on it too. Starting is exactly
once by the workflow id, which is the row's (``job-<id>``, ``generation-<id>``,
``generation-batch-<batch_id>``): a start Temporal refuses as a duplicate means an
earlier start (this dispatcher's before a crash, or another's) got there first, and
the row is marked as started all the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, Literal
from uuid import UUID

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from db import dispatch, jobs
from db.dispatch import Entity, NewGeneration
from db.pool import Pool
from db.transitions import NOW, Conn, TransitionContext, transition
from workers.dispatch import rules
from workers.dispatch.rules import Invalid
from workers.logging import get_logger
from workers.settings import Settings
from workers.starters import DuplicateStart, job_workflow_id, start_agent_job, start_generation
from workflows.generation_batch import GenerationBatch
from workflows.models.generation_batch import GenerationBatchInput
from workflows.search_attributes import USER_ID

log = get_logger("workers.dispatch")
Outcome = Literal[
    "started", "failed", "waiting", "skipped", "cancel_delivered", "cancelled", "nothing"
]
_SWEEP_LIMIT = 200
# A row whose cancel was delivered this long ago and is not finished: ask whether its
# workflow ended without recording it (only a closed workflow's row is finished here).
_CANCEL_GRACE = 5.0
_LIVE_JOB = ("pending", "running", "waiting_approval")
_LIVE_GENERATION = ("pending", "submitting", "queued", "in_progress")


def _ctx(reason: str, workflow_id: str | None = None) -> TransitionContext:
    return TransitionContext(reason=f"dispatch: {reason}"[:200], workflow_id=workflow_id)


class RowDispatcher:
    """Acts on the rows the app writes; every method is safe to call twice, and from two
    processes at once."""

    def __init__(self, pool: Pool, client: Client, settings: Settings) -> None:
        self.pool, self.client, self.settings = pool, client, settings

    async def handle(self, entity: Entity, row_id: UUID) -> Outcome:
        """Whatever the row needs: its cancel delivered, or its workflow started.

        The common case comes first, in one transaction: a new row with no cancel
        requested (and, for a generation, in no batch) is locked and started. Anything
        else (a cancel request, a batch, a row that is no longer new or that another
        dispatcher holds) takes the full path: its cancel first, then its start.
        """
        if entity == "generations":
            return await self._generation(row_id)
        started = await self._start_job(row_id)
        if started is not None:
            return started
        cancelled = await self._cancel_job(row_id)
        if cancelled != "nothing":
            return cancelled
        return await self._start_job(row_id) or "skipped"

    # --- jobs ---------------------------------------------------------------------------

    async def _start_job(self, job_id: UUID) -> Outcome | None:
        """Start a new job; None if it is not new, another dispatcher holds it, or its
        cancel was requested (the cancel comes first)."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await dispatch.lock_new_job(conn, job_id)
            if row is None or row.cancel_requested_at is not None:
                return None
            try:
                request = rules.job_input(row, self.settings)
            except Invalid as exc:
                await jobs.mark_job_failed(conn, job_id, _ctx(str(exc)), error_message=str(exc))
                log.info("job refused", job_id=str(job_id), reason=str(exc))
                return "failed"
            try:
                await start_agent_job(self.client, self.settings, request)
            except DuplicateStart:
                log.info("job was started before", job_id=str(job_id))
            await dispatch.mark_job_dispatched(conn, job_id, job_workflow_id(job_id))
        return "started"

    async def _cancel_job(self, job_id: UUID) -> Outcome:
        async def never_started(conn: Conn) -> None:
            ctx = _ctx("cancelled before it started")
            await jobs.mark_job_cancelled(conn, job_id, ctx, reason=_NEVER_STARTED)

        return await self._deliver_cancel(
            "jobs", job_id, job_workflow_id(job_id), _LIVE_JOB, never_started
        )

    async def _deliver_cancel(
        self,
        entity: Entity,
        row_id: UUID,
        default_workflow_id: str,
        live: Collection[str],
        never_started: Callable[[Conn], Awaitable[None]],
    ) -> Outcome:
        """Deliver a requested cancel to the row's workflow once: a row still pending
        whose workflow never started is ended here (``never_started``)."""
        async with self.pool.connection() as conn, conn.transaction():
            request = await dispatch.lock_cancel(conn, entity, row_id)
            if request is None:
                return "nothing"
            workflow_id = request.temporal_workflow_id or default_workflow_id
            outcome: Outcome = "nothing"
            if request.status not in live:
                pass  # it ended before the cancel came: nothing to do
            elif await self._cancel(workflow_id):
                outcome = "cancel_delivered"
            elif request.status == "pending":  # it never started: end it here
                await never_started(conn)
                outcome = "cancelled"
            await dispatch.mark_cancel_delivered(conn, entity, row_id, workflow_id)
        return outcome

    # --- generations --------------------------------------------------------------------

    async def _generation(self, generation_id: UUID) -> Outcome:
        started = await self._start_generation(generation_id)
        if started is not None:
            return started
        async with self.pool.connection() as conn:
            row = await dispatch.generation_batch(conn, generation_id)
        if row is None:
            return "nothing"
        if _in_batch(row):
            assert row.batch_id is not None
            return await self.dispatch_batch(row.batch_id)
        cancelled = await self._cancel_generation(generation_id)
        if cancelled != "nothing":
            return cancelled
        return await self._start_generation(generation_id) or "skipped"

    async def _start_generation(self, generation_id: UUID) -> Outcome | None:
        """Start a new generation that stands alone; None if it is not new, another
        dispatcher holds it, its cancel was requested (the cancel comes first) or it
        belongs to a batch (started as one, ``dispatch_batch``)."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await dispatch.lock_new_generation(conn, generation_id)
            if row is None or row.cancel_requested_at is not None or _in_batch(row):
                return None
            try:
                request = rules.generation_input(row, self.settings)
            except Invalid as exc:
                await _fail_generation(conn, row.id, str(exc))
                return "failed"
            try:
                await start_generation(self.client, self.settings, request)
            except DuplicateStart:
                log.info("generation was started before", generation_id=str(generation_id))
            await dispatch.mark_generation_dispatched(
                conn,
                generation_id,
                rules.generation_workflow_id(generation_id),
                request.prompt_text or "",
            )
        return "started"

    async def _cancel_generation(self, generation_id: UUID) -> Outcome:
        async def never_started(conn: Conn) -> None:
            await _cancel_unstarted(conn, generation_id)

        return await self._deliver_cancel(
            "generations",
            generation_id,
            rules.generation_workflow_id(generation_id),
            _LIVE_GENERATION,
            never_started,
        )

    async def dispatch_batch(self, batch_id: UUID) -> Outcome:
        """Start a complete batch as one GenerationBatch, cancel it, or refuse it whole.

        A batch is the rows sharing ``batch_id``, each naming the same ``batch_size``. It
        starts once all of its rows are there; rows that are still missing after
        ``DISPATCH_BATCH_WAIT_SECONDS``, a row that arrives after the start, or rows that
        disagree (size, model, settings) end ``failed``. A cancel on any row cancels the
        whole batch.
        """
        wait = self.settings.dispatch_batch_wait_seconds
        async with self.pool.connection() as conn, conn.transaction():
            rows = await dispatch.lock_batch(conn, batch_id, wait)
            if not rows:
                return "skipped"  # another transaction is looking at the batch
            workflow_id = rules.batch_workflow_id(batch_id)
            new = [r for r in rows if r.status == "pending" and r.temporal_workflow_id is None]
            started = any(r.temporal_workflow_id for r in rows)
            if any(r.cancel_requested_at and not r.cancel_delivered_at for r in rows):
                return await self._cancel_batch(conn, batch_id, new, started)
            if not new:
                return "nothing"
            if started:
                why = f"batch {batch_id} had already started when this row arrived"
                return await _fail_generations(conn, new, why)
            if ended := [r for r in rows if r.status != "pending"]:
                why = f"batch {batch_id} cannot start: row {ended[0].id} is {ended[0].status}"
                return await _fail_generations(conn, new, why)
            if incomplete := rules.batch_incomplete(rows):
                if len(rows) < (rows[0].batch_size or 0) and not any(r.waited_out for r in rows):
                    return "waiting"
                if len(rows) < (rows[0].batch_size or 0):
                    incomplete += f" after {wait:.0f}s"
                return await _fail_generations(conn, new, incomplete)
            try:
                request = rules.batch_input(rows)
            except Invalid as exc:
                return await _fail_generations(conn, new, str(exc))
            await self._start_batch(request, workflow_id)
            for row, prompt in zip(rows, request.prompts, strict=True):
                await dispatch.mark_generation_dispatched(
                    conn, row.id, rules.generation_workflow_id(row.id), prompt.prompt_text or ""
                )
        return "started"

    async def _cancel_batch(
        self, conn: Conn, batch_id: UUID, new: list[NewGeneration], started: bool
    ) -> Outcome:
        delivered = await self._cancel(rules.batch_workflow_id(batch_id))
        # Rows without a workflow end here: all of them if the batch never started, the
        # late ones (which joined no workflow) if it did.
        for row in new:
            await _cancel_unstarted(conn, row.id)
        await dispatch.mark_batch_cancel_delivered(conn, batch_id)
        return "cancel_delivered" if delivered or started else "cancelled"

    async def _start_batch(self, request: GenerationBatchInput, workflow_id: str) -> None:
        try:
            await self.client.start_workflow(
                GenerationBatch.run,
                request,
                id=workflow_id,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                task_queue=self.settings.temporal_task_queue,
                static_summary=f"{len(request.prompts)} variations from the app",
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(USER_ID, str(request.user_id))]
                ),
            )
        except WorkflowAlreadyStartedError:
            log.info("batch was started before", batch_id=str(request.batch_id))

    # --- both ---------------------------------------------------------------------------

    async def _cancel(self, workflow_id: str) -> bool:
        """Request cancellation; False if there is no such workflow, or it has closed."""
        handle: WorkflowHandle[object, object] = self.client.get_workflow_handle(workflow_id)
        try:
            await handle.cancel()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        log.info("cancel delivered", workflow_id=workflow_id)
        return True

    async def sweep(self) -> int:
        """Act on everything a notification may have missed; how many rows it looked at.

        New rows without a workflow, cancel requests not delivered, and rows whose cancel
        was delivered but whose workflow ended without recording it (a cancel that came
        before the workflow persisted its row): those end ``cancelled`` here.
        """
        async with self.pool.connection() as conn:
            refs = await dispatch.undispatched(conn, _SWEEP_LIMIT)
            refs += await dispatch.cancels_undelivered(conn, _SWEEP_LIMIT)
            unfinished = await dispatch.cancels_unfinished(conn, _CANCEL_GRACE, _SWEEP_LIMIT)
        for ref in refs:
            await self._isolated(self.handle(ref.entity, ref.id), ref)
        for ref in unfinished:
            await self._isolated(self._finish_cancelled(ref), ref)
        return len(refs) + len(unfinished)

    async def _isolated(self, action: Coroutine[Any, Any, object], ref: dispatch.RowRef) -> None:
        """One row's failure (Temporal down, a row no rule foresaw) does not stop the
        sweep from acting on the others; the next sweep tries it again."""
        try:
            await action
        except Exception as exc:
            log.warning(
                "dispatch failed; the next sweep retries it",
                entity=ref.entity,
                id=str(ref.id),
                error=f"{type(exc).__name__}: {exc}",
            )

    async def _finish_cancelled(self, ref: dispatch.RowRef) -> None:
        derived = (
            job_workflow_id(ref.id)
            if ref.entity == "jobs"
            else rules.generation_workflow_id(ref.id)
        )
        workflow_ids = [ref.temporal_workflow_id or derived]
        if ref.batch_id is not None:
            workflow_ids.append(rules.batch_workflow_id(ref.batch_id))
        for workflow_id in workflow_ids:
            if not await self._closed(workflow_id):
                return
        why = "cancelled on request; its workflow ended before it could record it"
        async with self.pool.connection() as conn:
            if ref.entity == "jobs":
                await jobs.mark_job_cancelled(conn, ref.id, _ctx(why), reason=why)
            else:
                await _end_generation(conn, ref.id, "cancelled", why, _LIVE_GENERATION)
        log.warning("cancelled row finished by the dispatcher", entity=ref.entity, id=str(ref.id))

    async def _closed(self, workflow_id: str) -> bool:
        try:
            described = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return described.raw_description.workflow_execution_info.status != (
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
        )


_NEVER_STARTED = "cancelled on request before it started"


def _in_batch(row: dispatch.BatchMembership | NewGeneration) -> bool:
    """A generation of a batch (started, cancelled or refused with its batch as one)."""
    return row.batch_id is not None and row.batch_size is not None


async def _cancel_unstarted(conn: Conn, generation_id: UUID) -> None:
    await _end_generation(conn, generation_id, "cancelled", _NEVER_STARTED)


async def _fail_generation(conn: Conn, generation_id: UUID, why: str) -> None:
    await _end_generation(conn, generation_id, "failed", why)
    log.info("generation refused", generation_id=str(generation_id), reason=why)


async def _end_generation(
    conn: Conn,
    generation_id: UUID,
    status: str,
    why: str,
    from_statuses: tuple[str, ...] = ("pending",),
) -> None:
    # Not db.generations.move: its row model cannot read a row whose settings are not an
    # object, and such a row must end too.
    await transition(
        conn,
        table="generations",
        entity_id=generation_id,
        to_status=status,
        from_statuses=from_statuses,
        ctx=_ctx(why),
        values={"error_message": why, "completed_at": NOW},
    )


async def _fail_generations(conn: Conn, rows: list[NewGeneration], why: str) -> Outcome:
    for row in rows:
        await _fail_generation(conn, row.id, why)
    return "failed"
