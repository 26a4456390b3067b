"""The sandbox re-imports workflow modules per run; their compiled code is shared."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

import workflows.agent_job
from tests.harness import running_stack
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workers import shared_code


def _fresh_import(name: str):  # type: ignore[no-untyped-def]
    """Import ``name`` again as the sandbox does: a new module, same sys.meta_path."""
    saved = sys.modules.pop(name)
    try:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.modules[name] = saved


def test_fresh_imports_share_code_but_not_module_state() -> None:
    shared_code.install()
    shared_code.install()  # idempotent
    assert sys.meta_path.count(shared_code._SharedCodeFinder) == 1
    first = _fresh_import("workflows.agent_job")
    second = _fresh_import("workflows.agent_job")
    assert first.AgentJob is not second.AgentJob  # each run gets its own classes
    assert first.AgentJob.run.__code__ is second.AgentJob.run.__code__
    # Modules outside the package load as before.
    assert type(_fresh_import("db.queries").__loader__) is importlib.machinery.SourceFileLoader


async def test_the_worker_sandbox_loads_workflow_code_through_it(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # As a fresh worker process: the worker itself installs the finder.
    if shared_code._SharedCodeFinder in sys.meta_path:
        sys.meta_path.remove(shared_code._SharedCodeFinder)
    shared_code._SharedCodeLoader._codes.clear()
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS[:1])
        handle = await start_job(stack, request)
        assert (await handle.result()).status == "completed"
    loaded = {Path(path).name for path, _ in shared_code._SharedCodeLoader._codes}
    assert {"agent_job.py", "approval_gate.py"} <= loaded
    assert Path(workflows.agent_job.__file__ or "").name == "agent_job.py"
