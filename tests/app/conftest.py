"""A running system with the dispatcher, for the app's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.app.supabase_keys import supabase_project
from tests.harness import running_stack
from workers.dispatch.loop import running_dispatcher

# The dispatcher sweeps when it (re)connects, and then not for an hour: a test that needs
# a sweep runs one itself, and no test passes thanks to a sweep it did not ask for.
QUIET = {"dispatch_sweep_seconds": 3600}


@pytest.fixture
async def app_stack(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Any]:
    """Emulators, worker, ingress and one dispatcher on this test's database."""
    async with (
        running_stack(db_url, temporal_env.client, task_queue, **QUIET) as stack,
        running_dispatcher(stack.settings, stack.pool, stack.client) as dispatcher,
    ):
        assert dispatcher is not None and dispatcher.listening.is_set()
        stack.dispatcher = dispatcher  # type: ignore[attr-defined]
        yield stack


@pytest.fixture
async def api_stack(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Any]:
    """The app stack with the HTTP API, trusting a local Supabase project's keys; yields
    (stack, project)."""
    with supabase_project() as project:
        async with (
            running_stack(
                db_url,
                temporal_env.client,
                task_queue,
                supabase_url=project.url,
                supabase_jwt_secret=project.legacy_secret,
                **QUIET,
            ) as stack,
            running_dispatcher(stack.settings, stack.pool, stack.client) as dispatcher,
        ):
            stack.dispatcher = dispatcher  # type: ignore[attr-defined]
            yield stack, project
