"""What a batch of generations takes and gives."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from workflows.models.generation import DEFAULT_TIER_LIMITS, GenerationResult


class BatchPrompt(BaseModel):
    """One variation: a stored prompt or a text; ``generation_id`` names the row the app
    already inserted for it (none: the batch makes up an id)."""

    generation_id: UUID | None = None
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
