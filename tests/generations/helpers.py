"""Users with stored Higgsfield keys, and starting generations, for tests."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from activities.higgsfield import GenerationActivities, key_context
from db.generations import Q
from tests.db.factories import insert_user
from tests.harness import Stack
from tests.waiting import eventually
from workers.keys import Keyring, MasterKey, credential_box
from workers.starters import start_generation
from workers.worker import open_services
from workflows.generation_batch import GenerationBatch
from workflows.models.generation import GenerationInput
from workflows.models.generation_batch import GenerationBatchInput

HF_KEY = "hf_key_id:hf_key_secret_value"


async def user_with_key(
    stack: Stack, *, tier: str = "pro", key_b64: str | None = None
) -> uuid.UUID:
    """A user whose Higgsfield key is stored encrypted (with the stack's key by default;
    ``key_b64`` names another master key)."""
    box = credential_box(stack.settings)
    if key_b64 is not None:
        box = Keyring(MasterKey(base64.b64decode(key_b64))).credential_box()
    async with stack.pool.connection() as conn:
        user_id = await insert_user(conn)
        await conn.execute(
            "UPDATE profiles SET subscription_tier = %s WHERE id = %s", (tier, user_id)
        )
        await conn.execute(
            Q["upsert_user_api_key"],
            {
                "user_id": user_id,
                "service": "higgsfield",
                "encrypted_api_key": box.encrypt(HF_KEY, key_context(user_id, "higgsfield")),
            },
        )
    return user_id


async def start(stack: Stack, user_id: uuid.UUID, prompt: str, **fields: Any) -> Any:
    """Start a generation; returns (request, handle)."""
    request = GenerationInput(
        generation_id=uuid.uuid4(), user_id=user_id, prompt_text=prompt, **fields
    )
    return request, await start_generation(stack.client, stack.settings, request)


async def start_batch(stack: Stack, batch: GenerationBatchInput) -> Any:
    """Start a GenerationBatch (``generation-batch-<batch id>``) on the stack's queue."""
    return await stack.client.start_workflow(
        GenerationBatch.run,
        batch,
        id=f"generation-batch-{batch.batch_id}",
        task_queue=stack.settings.temporal_task_queue,
    )


async def generation_row(stack: Stack, generation_id: uuid.UUID) -> dict[str, Any]:
    """The generation's row."""
    row = await stack.fetchrow("SELECT * FROM generations WHERE id = %s", generation_id)
    assert row is not None
    return row


async def status_reads(handle: Any) -> int:
    """How many status reads the workflow scheduled (from its history)."""
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "check_generation"
    )


@asynccontextmanager
async def submitted_then_terminated(
    stack: Stack, prompt: str
) -> AsyncIterator[tuple[uuid.UUID, str, GenerationActivities]]:
    """A generation submitted to Higgsfield (held queued) whose workflow is terminated, so
    the test calls the activities itself: (generation id, request id, activities)."""
    hf = stack.emulators.higgsfield
    hf.auto_advance = False
    request, handle = await start(stack, await user_with_key(stack), prompt)
    await eventually(lambda: hf.submissions(), what="submission")
    await handle.terminate("the test calls the activities itself")
    async with open_services(stack.settings, stack.pool) as services:
        yield (
            request.generation_id,
            hf.submissions()[0]["request_id"],
            GenerationActivities(
                stack.pool, services.credentials, services.http, services.higgsfield
            ),
        )
