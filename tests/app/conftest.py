"""A running system with the dispatcher, for the app's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from workers.dispatch.loop import running_dispatcher


@pytest.fixture
async def app_stack(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Any]:
    """Emulators, worker, ingress and one dispatcher on this test's database."""
    async with (
        running_stack(db_url, temporal_env.client, task_queue) as stack,
        running_dispatcher(stack.settings, stack.pool, stack.client) as dispatcher,
    ):
        assert dispatcher is not None and dispatcher.listening.is_set()
        stack.dispatcher = dispatcher  # type: ignore[attr-defined]
        yield stack
