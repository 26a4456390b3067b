"""The worker's vendor clients are closed when it stops, so nothing of theirs runs later
inside a workflow."""

from __future__ import annotations

import gc
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.harness import running_stack
from tests.workflows.collecting_workflow import CollectGarbage
from workers.sdk_internals.compiled_sandbox import CompiledSandboxRunner
from workers.worker import open_services


async def test_closed_services_left_to_the_collector_start_nothing_in_a_workflow(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        async with open_services(stack.settings, stack.pool) as services:
            # Each client holds a pooled connection to its emulator.
            await services.steel.sessions.list()
            await services.supermemory.search("someone", query="anything", limit=1)
            await services.http.get(stack.settings.ingress_url + "/healthz")
        assert services.steel.is_closed()
        assert services.supermemory_http.is_closed and services.http.is_closed

        # The garbage collector can run on any thread. On a workflow thread, the running
        # loop is a workflow run's: Steel's SDK closes an unclosed client from __del__ by
        # creating a task on it (which then runs httpx's close inside the sandbox).
        cycle: list[object] = [services]
        cycle.append(cycle)
        del services, cycle
        gc.disable()  # this collection happens in the workflow, not before
        try:
            async with Worker(
                temporal_env.client,
                task_queue=task_queue,
                workflows=[CollectGarbage],
                workflow_runner=CompiledSandboxRunner(),
            ):
                extra_tasks = await temporal_env.client.execute_workflow(
                    CollectGarbage.run, id=f"collect-{uuid.uuid4()}", task_queue=task_queue
                )
        finally:
            gc.enable()
        assert extra_tasks == 0
