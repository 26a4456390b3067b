"""The SDK patches' version gate: on only where verified; anywhere else the worker runs the
SDK as shipped, says so, and still runs workflows."""

from __future__ import annotations

import sys

import pytest
import structlog
import temporalio
import temporalio.bridge.worker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, _runner

from tests.harness import running_stack
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workers import sdk_internals, shared_code
from workers.sdk_internals import compiled_sandbox, sdk_patches
from workers.settings import SettingsError, load_settings
from workers.worker import build_worker, open_services


def test_the_patches_were_verified_on_temporalio_1_35_0_and_it_is_installed() -> None:
    assert {"1.35.0"} == sdk_internals.VERIFIED_TEMPORALIO
    assert temporalio.__version__ == sdk_internals.TEMPORALIO_VERSION
    # An upgrade fails here on purpose: the worker would fall back to the SDK as shipped.
    # Verify the patches on it (see workers/sdk_internals/__init__.py), then add it.
    assert temporalio.__version__ in sdk_internals.VERIFIED_TEMPORALIO, (
        f"temporalio {temporalio.__version__}: the SDK patches were not verified on it"
    )


def test_auto_on_a_verified_temporalio_turns_them_on() -> None:
    patches = sdk_patches("auto")
    assert patches.enabled, patches.reason
    assert type(patches.workflow_runner()) is compiled_sandbox.CompiledSandboxRunner


@pytest.mark.parametrize(
    "version",
    [
        "1.35.1",
        "1.36.0",
        "1.34.0",
        "2.0.0",
        "1.35",
        "1.35.0rc1",
        "1.35.0.dev0",
        "1.35.0+local",
        " 1.35.0",
        "1.35.0 ",
        "v1.35.0",
        "",
    ],
)
def test_auto_on_any_other_temporalio_runs_the_sdk_as_shipped(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk_internals, "TEMPORALIO_VERSION", version)
    patches = sdk_patches("auto")
    assert not patches.enabled
    assert patches.reason == (
        f"temporalio {version} is not a version they were verified on (1.35.0)"
    )
    assert type(patches.workflow_runner()) is SandboxedWorkflowRunner


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0"])
def test_off_runs_the_sdk_as_shipped_on_every_version(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk_internals, "TEMPORALIO_VERSION", version)
    patches = sdk_patches("off")
    assert not patches.enabled and patches.reason == "WORKER_SDK_PATCHES=off"
    assert type(patches.workflow_runner()) is SandboxedWorkflowRunner


def test_a_verified_version_whose_internals_are_gone_runs_the_sdk_as_shipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a patched or repackaged 1.35.0 might: the runner's private base class is missing.
    monkeypatch.delattr(_runner, "_Instance")
    monkeypatch.delitem(sys.modules, "workers.sdk_internals.compiled_sandbox")
    patches = sdk_patches("auto")
    assert not patches.enabled
    assert patches.reason.startswith("temporalio 1.35.0's sandbox internals differ: ")
    assert "_Instance" in patches.reason
    assert type(patches.workflow_runner()) is SandboxedWorkflowRunner


def test_a_verified_version_without_the_eviction_request_runs_the_sdk_as_shipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(temporalio.bridge.worker.Worker, "request_workflow_eviction")
    patches = sdk_patches("auto")
    assert not patches.enabled
    assert patches.reason == "temporalio 1.35.0 has no workflow eviction request"


@pytest.mark.parametrize("value", ["on", "true", "1", "AUTO", "Off", " auto", "auto ", "", "no"])
def test_the_setting_takes_auto_or_off_only(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_SDK_PATCHES", value)
    with pytest.raises(SettingsError, match="invalid setting WORKER_SDK_PATCHES"):
        load_settings()
    with pytest.raises(ValueError, match="must be auto or off"):
        sdk_patches(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [(None, "auto"), ("auto", "auto"), ("off", "off")])
def test_the_setting_defaults_to_auto(
    value: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("WORKER_SDK_PATCHES", raising=False)
    else:
        monkeypatch.setenv("WORKER_SDK_PATCHES", value)
    assert load_settings().worker_sdk_patches == expected


async def test_on_an_unverified_temporalio_the_worker_runs_workflows_with_the_stock_sdk(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sdk_internals, "TEMPORALIO_VERSION", "1.36.0")
    # As in a fresh worker process: no patch installed yet, the compiled snippets unused.
    stock_path = [f for f in sys.meta_path if f is not shared_code._SharedCodeFinder]
    monkeypatch.setattr(sys, "meta_path", stock_path)
    compiled_sandbox._compiled.cache_clear()
    with structlog.testing.capture_logs() as logs:
        async with (
            running_stack(
                db_url,
                temporal_env.client,
                task_queue,
                worker=False,
                worker_idle_eviction_seconds=1,
            ) as stack,
            open_services(stack.settings, stack.pool) as services,
            build_worker(temporal_env.client, stack.settings, services) as queue_workers,
        ):
            worker = queue_workers.workflow_worker
            assert type(worker) is Worker  # not the evicting worker
            request = await job_request(stack, SAFE_STEPS[:2])
            handle = await start_job(stack, request)
            assert (await handle.result()).status == "completed"
            job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
            assert job == {"status": "completed"}
    said = [e for e in logs if str(e.get("event")).startswith("SDK patches")]
    assert said == [
        {
            "event": "SDK patches off: the SDK as shipped",
            "log_level": "warning",
            "reason": "temporalio 1.36.0 is not a version they were verified on (1.35.0)",
            "workflow_runner": "SandboxedWorkflowRunner",
            "shared_code": False,
            "idle_eviction_s": None,
        }
    ]
    assert compiled_sandbox._compiled.cache_info().currsize == 0  # the SDK's runner ran them
    assert shared_code._SharedCodeFinder not in sys.meta_path
