"""GenerationBatch: several prompt variations (seed 003: five, prompt_index 0-4) as child
Generation workflows under one parent; the per-user slot limit paces them."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

from workflows.generation import Generation

with workflow.unsafe.imports_passed_through():
    from workflows.models.generation import GenerationInput
    from workflows.models.generation_batch import GenerationBatchInput, GenerationBatchResult


@workflow.defn(name="GenerationBatch", failure_exception_types=[ValidationError])
class GenerationBatch:
    """Runs one child Generation per prompt; cancelling the batch cancels them."""

    @workflow.run
    async def run(self, request: GenerationBatchInput) -> GenerationBatchResult:
        """Start every child and wait for all of them."""
        children = []
        for index, prompt in enumerate(request.prompts):
            # A row the app inserted keeps its id; replays of earlier batches (no
            # generation_id) draw the same uuid4 as before.
            generation_id = prompt.generation_id or workflow.uuid4()
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
        results = await asyncio.gather(*children)
        return GenerationBatchResult(batch_id=request.batch_id, results=list(results))
