"""What a generation takes and gives, and the webhook hint it receives."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

DEFAULT_TIER_LIMITS = {"free": 1, "basic": 2, "pro": 4, "enterprise": 8}
# A generation ends by its deadline; waiting this long for a slot stays a small history.
MAX_DEADLINE = timedelta(days=7)
SLOT_FREED = "slot_freed"  # the signal a generation that frees a slot sends its user's waiters


class GenerationInput(BaseModel):
    """One image to generate for a user."""

    generation_id: UUID
    user_id: UUID
    prompt_id: UUID | None = None
    prompt_text: Annotated[str | None, Field(max_length=4000)] = None
    model: Annotated[str, Field(min_length=1, max_length=200)] = "soul"
    settings: dict[str, Any] = {}
    deadline: Annotated[timedelta, Field(gt=timedelta(0), le=MAX_DEADLINE)] = timedelta(hours=1)
    tier_limits: dict[str, int] = DEFAULT_TIER_LIMITS
    batch_id: UUID | None = None

    @model_validator(mode="after")
    def _has_prompt(self) -> GenerationInput:
        if self.prompt_id is None and not self.prompt_text:
            raise ValueError("a generation needs prompt_id or prompt_text")
        return self


class WebhookHint(BaseModel):
    """What Higgsfield's (unsigned) webhook said; confirmed by a status read."""

    request_id: str
    status: str


class GenerationResult(BaseModel):
    """How the generation ended."""

    generation_id: UUID
    status: str
    request_id: str | None
    asset_ids: list[str] = []
    error: str | None = None
