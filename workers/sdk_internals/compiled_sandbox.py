"""Temporal's workflow sandbox, without two costs it pays for every payload.

temporalio 1.35 asks the workflow instance for a serialization context (and an external
storage context) for each payload sequence of every activation and every completion, in
three passes each way. The sandbox answers each question by ``exec``-ing a source string
inside itself: the string is compiled again every time, and the sandbox's import hooks
are swapped in and out around a lookup that imports nothing. Measured on our recorded
job history: ~40 % of the CPU of a replay, and every cached workflow task pays it too.

This runner keeps the sandbox as it is (same restrictions, a fresh module per run, every
activation still runs inside it) and changes only that:

* the source strings the sandbox runs are compiled once (the same code, run the same way);
* the two context lookups call the sandboxed workflow instance directly: they read the
  run's info and its pending commands and build SDK dataclasses, nothing else.

It subclasses the SDK's private ``_Instance`` and overrides private methods: only
:mod:`workers.sdk_internals` imports it, and only on a temporalio version the patches
were verified on (``tests/workflows/test_sandbox_runner.py`` checks the SDK code it
relies on).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import CodeType
from typing import Any

from temporalio.converter import SerializationContext, StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> CodeType:
    # The sandbox runs a handful of fixed snippets (import, activate, create); exec of a
    # string compiles it anew on every call, as compile() does here once.
    return compile(source, "<string>", "exec")


class _CompiledInstance(_Instance):
    """A sandboxed workflow run whose snippets are compiled once."""

    def _run_code(self, code: str, **extra_globals: Any) -> None:
        # exec() takes a code object as well as a string; everything else is the SDK's.
        super()._run_code(_compiled(code), **extra_globals)  # type: ignore[arg-type]

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> SerializationContext | None:
        self.importer.restriction_context.is_runtime = True
        try:
            return self._in_sandbox().get_serialization_context(command_info)
        finally:
            self.importer.restriction_context.is_runtime = False

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        self.importer.restriction_context.is_runtime = True
        try:
            return self._in_sandbox().get_external_store_context(command_info)
        finally:
            self.importer.restriction_context.is_runtime = False

    def _in_sandbox(self) -> Any:
        # The object the SDK's own snippets call these methods on.
        return self.globals_and_locals["__temporal_in_sandbox"]


@dataclass(frozen=True)
class CompiledSandboxRunner(SandboxedWorkflowRunner):
    """The SDK's sandboxed runner, creating :class:`_CompiledInstance` runs."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _CompiledInstance(det, self.runner_class, self.restrictions)
