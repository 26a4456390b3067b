"""GenerationBatch: several prompt variations (seed 003: five, prompt_index 0-4) as child
Generation workflows under one parent; the per-user slot limit paces them."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import UUID

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import (
    ChildWorkflowError,
    TerminatedError,
    is_cancelled_exception,
)
from temporalio.exceptions import TimeoutError as ChildTimedOut
from temporalio.workflow import ParentClosePolicy

from workflows.ending import failure_reason, handlers_done
from workflows.generation import Generation

with workflow.unsafe.imports_passed_through():
    from workflows.models.generation import GenerationInput, GenerationResult
    from workflows.models.generation_batch import GenerationBatchInput, GenerationBatchResult

# workflow.patched id: a child that fails is reported in the result and its siblings run on.
# Older runs failed the batch at the first failed child, which cancelled the others.
BATCH_REPORTS_EACH = "batch-reports-each"


@workflow.defn(name="GenerationBatch", failure_exception_types=[ValidationError])
class GenerationBatch:
    """Runs one child Generation per prompt; cancelling the batch cancels them."""

    @workflow.run
    async def run(self, request: GenerationBatchInput) -> GenerationBatchResult:
        """Start every child and wait for all of them, whatever each one's end."""
        # Not in a finally: a run evicted from the cache is closed outside its event loop.
        result = await self._run(request)
        await handlers_done()
        return result

    async def _run(self, request: GenerationBatchInput) -> GenerationBatchResult:
        children = []
        generation_ids: list[UUID] = []
        for index, prompt in enumerate(request.prompts):
            # A row the app inserted keeps its id; replays of earlier batches (no
            # generation_id) draw the same uuid4 as before.
            generation_id = prompt.generation_id or workflow.uuid4()
            generation_ids.append(generation_id)
            children.append(
                workflow.execute_child_workflow(
                    Generation.run,
                    GenerationInput(
                        generation_id=generation_id,
                        user_id=request.user_id,
                        prompt_id=prompt.prompt_id,
                        prompt_text=prompt.prompt_text,
                        model=request.model,
                        settings=request.settings,
                        tier_limits=request.tier_limits,
                        batch_id=request.batch_id,
                    ),
                    id=f"generation-{generation_id}",
                    static_summary=f"variation {index + 1} of batch {request.batch_id}",
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                )
            )
        workflow.set_current_details(f"{len(children)} variations")
        if not workflow.patched(BATCH_REPORTS_EACH):
            results = await asyncio.gather(*children)
            return GenerationBatchResult(batch_id=request.batch_id, results=list(results))
        # A failed child is one variation's outcome; the batch itself is cancelled only when
        # it is (gather then cancels the children, and the parent close policy too).
        ended = await asyncio.gather(*children, return_exceptions=True)
        reported = [
            outcome if isinstance(outcome, GenerationResult) else _child_ended(gid, outcome)
            for gid, outcome in zip(generation_ids, ended, strict=True)
        ]
        counts = Counter(r.status for r in reported)
        workflow.set_current_details(
            f"{len(reported)} variations: "
            + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        )
        return GenerationBatchResult(batch_id=request.batch_id, results=reported)


def _child_ended(generation_id: UUID, failure: BaseException) -> GenerationResult:
    """The result of a child that raised instead of returning one."""
    if not isinstance(failure, ChildWorkflowError):
        raise failure  # not a child's end: a bug here, for the workflow task to retry
    cause = failure.cause
    if is_cancelled_exception(failure):
        status, why = "cancelled", "cancelled"
    elif isinstance(cause, TerminatedError):
        status, why = "failed", "terminated"
    elif isinstance(cause, ChildTimedOut):
        status, why = "failed", "timed out"
    else:
        status = "failed"
        why = failure_reason(failure)
    return GenerationResult(generation_id=generation_id, status=status, request_id=None, error=why)
