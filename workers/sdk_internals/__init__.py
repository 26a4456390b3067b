"""The one door to the SDK's private internals: the worker's patches of temporalio.

Three patches make the worker cheaper than the SDK as shipped (figures: README,
Performance, "What the SDK patches buy"):

* **compiled sandbox runner** (:mod:`workers.sdk_internals.compiled_sandbox`): the
  sandbox's snippets compiled once, its serialization-context lookups made directly
  (it subclasses the SDK's private ``_Instance``);
* **shared workflow code** (:mod:`workers.shared_code`): the workflow modules the
  sandbox imports afresh for every run share their compiled code (an import hook; no
  private name, but it changes what the sandbox's imports load);
* **idle eviction** (:mod:`workers.idle_eviction`): runs idle in the sticky cache are
  evicted through the worker's private ``_bridge_worker`` (:func:`request_eviction`).

They are on only where they were verified: ``WORKER_SDK_PATCHES=auto`` (the default)
turns them on for a temporalio version in :data:`VERIFIED_TEMPORALIO` and leaves the SDK
as shipped on any other (the stock ``SandboxedWorkflowRunner``, no shared code, no idle
eviction: the sticky cache's LRU only), with a warning at start that says why;
``WORKER_SDK_PATCHES=off`` leaves it as shipped on every version.

Nothing outside this package touches a private SDK name (``tests/test_sdk_door.py``).
To verify a new temporalio version: run ``tests/workflows/test_sandbox_runner.py`` and
``tests/workflows/test_idle_eviction.py`` on it; where a digest of SDK code changed,
re-read the patch against the new code, record the new digest, and add the version here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import temporalio
import temporalio.bridge.worker
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

VERIFIED_TEMPORALIO: frozenset[str] = frozenset({"1.35.0"})
"""temporalio versions the patches were verified on (tests/workflows/test_sdk_internals.py)."""

TEMPORALIO_VERSION: str = temporalio.__version__
"""The installed version, as the gate reads it."""

Setting = Literal["auto", "off"]


@dataclass(frozen=True)
class SdkPatches:
    """Whether the worker runs with the patches, and why."""

    enabled: bool
    reason: str

    def workflow_runner(self) -> WorkflowRunner:
        """The compiled sandbox runner with the patches, the SDK's own without."""
        if not self.enabled:
            return SandboxedWorkflowRunner()
        from workers.sdk_internals.compiled_sandbox import CompiledSandboxRunner

        return CompiledSandboxRunner()


def sdk_patches(setting: Setting) -> SdkPatches:
    """The patches for ``WORKER_SDK_PATCHES`` on the installed temporalio."""
    if setting == "off":
        return SdkPatches(False, "WORKER_SDK_PATCHES=off")
    if setting != "auto":
        raise ValueError(f"WORKER_SDK_PATCHES must be auto or off, not {setting!r}")
    version = TEMPORALIO_VERSION
    if version not in VERIFIED_TEMPORALIO:
        verified = ", ".join(sorted(VERIFIED_TEMPORALIO))
        return SdkPatches(
            False, f"temporalio {version} is not a version they were verified on ({verified})"
        )
    try:
        import workers.sdk_internals.compiled_sandbox  # noqa: F401 - the private imports
    except (ImportError, AttributeError) as exc:  # a verified version, yet not as verified
        return SdkPatches(False, f"temporalio {version}'s sandbox internals differ: {exc}")
    if not callable(getattr(temporalio.bridge.worker.Worker, "request_workflow_eviction", None)):
        return SdkPatches(False, f"temporalio {version} has no workflow eviction request")
    return SdkPatches(True, f"temporalio {version} is a version they were verified on")


def request_eviction(worker: Worker, run_id: str) -> None:
    """Ask the SDK core to evict ``run_id`` from ``worker``'s cache: the path an LRU
    eviction takes (the core evicts once any activation in flight is done; the server does
    not know, and the run's next task replays it)."""
    worker._bridge_worker.request_workflow_eviction(run_id)
