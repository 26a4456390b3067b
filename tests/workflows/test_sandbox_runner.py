"""The compiled sandbox runner answers exactly as the SDK's own, and notices SDK changes."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import _in_sandbox, _runner

from tests.encryption import CONVERTER
from tests.harness import running_stack
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workers.sdk_internals import compiled_sandbox
from workers.worker import ALL_WORKFLOWS

HISTORIES = Path(__file__).parent.parent / "histories"

# The SDK code workers/sdk_internals/compiled_sandbox.py relies on, as it was when the runner
# was written (temporalio 1.35.0). A change here means: re-read the runner against the new
# SDK code, then record the new digests (and the version in VERIFIED_TEMPORALIO).
SDK_CODE = {
    "_Instance._create_instance": "ea6b375d467c2ff1",
    "_Instance._run_code": "78055698bee1c0d3",
    "_Instance.get_serialization_context": "b4331d145cc44758",
    "_Instance.get_external_store_context": "66d3ceaa5a824e05",
    "InSandbox.get_serialization_context": "80a6c3c66d58539f",
    "InSandbox.get_external_store_context": "d204b2f479964c1d",
}


def _digest(qualified: str) -> str:
    owner, name = qualified.split(".")
    cls = _runner._Instance if owner == "_Instance" else _in_sandbox.InSandbox
    return hashlib.sha256(inspect.getsource(getattr(cls, name)).encode()).hexdigest()[:16]


def test_the_sdk_code_the_runner_overrides_is_unchanged() -> None:
    changed = {name for name, digest in SDK_CODE.items() if _digest(name) != digest}
    assert not changed, (
        f"temporalio changed {sorted(changed)}: re-check workers/sdk_internals/compiled_sandbox.py"
    )


class _CheckedInstance(compiled_sandbox._CompiledInstance):
    """Answers as the runner does, and records every answer the SDK's own path differs on."""

    differences: list[tuple[str, Any, Any]] = []
    calls = 0

    def get_serialization_context(self, command_info: Any) -> Any:
        ours = super().get_serialization_context(command_info)
        sdk = _runner._Instance.get_serialization_context(self, command_info)
        self._compare("serialization", ours, sdk)
        return ours

    def get_external_store_context(self, command_info: Any) -> Any:
        ours = super().get_external_store_context(command_info)
        sdk = _runner._Instance.get_external_store_context(self, command_info)
        self._compare("external store", ours, sdk)
        return ours

    def _compare(self, kind: str, ours: Any, sdk: Any) -> None:
        type(self).calls += 1
        if ours != sdk:
            type(self).differences.append((kind, ours, sdk))


class _CheckedRunner(compiled_sandbox.CompiledSandboxRunner):
    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _CheckedInstance(det, self.runner_class, self.restrictions)


async def test_its_contexts_equal_the_sdk_ones_on_every_recorded_history() -> None:
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=CONVERTER,
        workflow_runner=_CheckedRunner(),
    )
    for path in sorted(HISTORIES.glob("*.json")):
        history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
        await replayer.replay_workflow(history)
    assert _CheckedInstance.calls > 1000  # activities, local activities, timers, children
    assert _CheckedInstance.differences == []


async def test_the_worker_runs_workflows_through_it(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    compiled_sandbox._compiled.cache_clear()
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS[:1])
        handle = await start_job(stack, request)
        assert (await handle.result()).status == "completed"
    cached = compiled_sandbox._compiled.cache_info()
    assert cached.currsize >= 2  # the import and the activation snippets
    assert cached.hits > cached.misses  # compiled once, run many times
