"""Worker Deployment versioning on the dev server: a job parked at a gate stays on the
build that started it (PINNED) while new jobs go to the current build; a roll back sends
new jobs to the old build again. The runbook's commands (docs/changing-workflows.md)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import find_binary
from tests.harness import Stack, running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workers.settings import SettingsError, load_settings
from workers.worker import build_worker, open_services


@contextlib.asynccontextmanager
async def build(stack: Stack, build_id: str) -> AsyncIterator[None]:
    """Every queue's worker of one build, on the stack's task queue."""
    settings = stack.settings.model_copy(update={"worker_build_id": build_id})
    async with (
        open_services(settings, stack.pool) as services,
        build_worker(stack.client, settings, services),
    ):
        yield


async def set_current(env: WorkflowEnvironment, deployment: str, build_id: str) -> None:
    """``temporal worker deployment set-current-version`` (retried until the version's
    pollers have registered it with the server)."""
    command = [
        str(find_binary("temporal")),
        "worker",
        "deployment",
        "set-current-version",
        "--address",
        env.client.service_client.config.target_host,
        "--namespace",
        env.client.namespace,
        "--deployment-name",
        deployment,
        "--build-id",
        build_id,
        "--yes",
    ]

    async def done() -> bool:
        ran = await asyncio.to_thread(subprocess.run, command, capture_output=True, check=False)
        return ran.returncode == 0

    await eventually(done, timeout=60, what=f"{deployment}.{build_id} current")


async def pinned_build(handle: Any) -> tuple[int, str]:
    """The run's versioning behavior and the build it runs on."""
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return info.behavior, info.deployment_version.build_id


async def task_builds(handle: Any) -> list[str]:
    """The build of every completed workflow task, in order."""
    builds = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            builds.append(
                event.workflow_task_completed_event_attributes.deployment_version.build_id
            )
    return builds


async def test_a_parked_job_stays_on_its_build_new_jobs_go_to_the_current_one_and_back(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    deployment = f"orchestrator-{uuid.uuid4().hex[:8]}"
    async with (
        running_stack(
            db_url,
            temporal_env.client,
            task_queue,
            worker=False,
            worker_deployment_name=deployment,
            worker_build_id="v1",
        ) as stack,
        build(stack, "v1"),
    ):
        await set_current(temporal_env, deployment, "v1")
        _request, parked, sent = await waiting_job(
            stack, [*SAFE_STEPS[:1], DELETE_STEP], "pin@example.com"
        )
        assert await pinned_build(parked) == (
            VersioningBehavior.VERSIONING_BEHAVIOR_PINNED,
            "v1",
        )

        async with build(stack, "v2"):  # the deploy: v2 beside v1, then current
            await set_current(temporal_env, deployment, "v2")
            fresh = await start_job(stack, await job_request(stack, SAFE_STEPS[:1]))
            assert (await fresh.result()).status == "completed"
            assert set(await task_builds(fresh)) == {"v2"}

            # The parked job's reply is handled by v1, where the job started.
            await reply(stack, sent["id"], "Approve")
            assert (await parked.result()).status == "completed"
            assert set(await task_builds(parked)) == {"v1"}

            # Roll back: v1 is current again, and new jobs start there.
            await set_current(temporal_env, deployment, "v1")
            back = await start_job(stack, await job_request(stack, SAFE_STEPS[:1]))
            assert (await back.result()).status == "completed"
            assert set(await task_builds(back)) == {"v1"}


@pytest.mark.parametrize(
    ("name", "build", "said"),
    [
        ("orchestrator", None, "missing setting WORKER_BUILD_ID"),
        (None, "v2", "missing setting WORKER_DEPLOYMENT_NAME"),
    ],
)
def test_half_a_version_is_refused_with_one_line(
    name: str | None, build: str | None, said: str
) -> None:
    settings = load_settings(worker_deployment_name=name, worker_build_id=build)
    with pytest.raises(SettingsError) as refused:
        settings.deployment_version()
    assert str(refused.value.code).startswith(said)


@pytest.mark.parametrize("value", ["v 2", "v2.1", "", "ä", "x" * 256, "a/b"])
def test_a_version_part_outside_temporals_alphabet_is_refused(value: str) -> None:
    if value == "":  # empty is unset: versioning off
        assert load_settings(worker_build_id=value).deployment_version() is None
        return
    with pytest.raises(SettingsError, match="invalid setting WORKER_BUILD_ID"):
        load_settings(worker_build_id=value)


def test_without_a_version_the_worker_is_unversioned() -> None:
    assert load_settings().deployment_version() is None
    assert load_settings(
        worker_deployment_name="o", worker_build_id="b-1"
    ).deployment_version() == (
        "o",
        "b-1",
    )
