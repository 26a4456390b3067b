"""GenerationBatch: several prompt variations (seed 003: five, prompt_index 0-4) as child
Generation workflows under one parent; the per-user slot limit paces them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError
from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

from workflows.generation import DEFAULT_TIER_LIMITS, Generation, GenerationInput, GenerationResult


class BatchPrompt(BaseModel):
    """One variation: a stored prompt or a text."""

    prompt_id: UUID | None = None
    prompt_text: str | None = None


class GenerationBatchInput(BaseModel):
    """Variations to generate for one user."""

    batch_id: UUID
    user_id: UUID
    prompts: Annotated[list[BatchPrompt], Field(min_length=1, max_length=20)]
    model: str = "soul"
    settings: dict[str, Any] = {}
    tier_limits: dict[str, int] = DEFAULT_TIER_LIMITS


class GenerationBatchResult(BaseModel):
    """Each child's outcome, in prompt order."""

    batch_id: UUID
    results: list[GenerationResult]


@workflow.defn(name="GenerationBatch", failure_exception_types=[ValidationError])
class GenerationBatch:
    """Runs one child Generation per prompt; cancelling the batch cancels them."""

    @workflow.run
    async def run(self, request: GenerationBatchInput) -> GenerationBatchResult:
        """Start every child and wait for all of them."""
        children = []
        for index, prompt in enumerate(request.prompts):
            generation_id = workflow.uuid4()
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
