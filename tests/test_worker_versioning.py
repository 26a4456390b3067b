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
from temporalio.api.enums.v1 import EventType, RoutingConfigUpdateState, VersioningBehavior
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import find_binary
from tests.generations.helpers import start, user_with_key
from tests.harness import Stack, running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workers.settings import SettingsError, load_settings
from workers.worker import build_worker, open_services

# Build ids as image tags look: with dots (the version string splits at the first one).
V1, V2 = "2026-12-04.1", "2026-12-04.2"


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

    async def propagated() -> bool:
        # The server hands the new routing to the task queues' partitions after it answers:
        # until it has, a task may still go to the old build (seen under load).
        described = await env.client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=env.client.namespace, deployment_name=deployment
            )
        )
        info = described.worker_deployment_info
        return (
            info.routing_config.current_deployment_version.build_id == build_id
            and info.routing_config_update_state
            != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS
        )

    await eventually(propagated, timeout=60, what=f"{deployment}.{build_id} routed")


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


async def test_a_parked_job_stays_on_its_build_a_generation_moves_new_jobs_go_to_current(
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
            worker_build_id=V1,
        ) as stack,
        build(stack, V1),
    ):
        await set_current(temporal_env, deployment, V1)
        _request, parked, sent = await waiting_job(
            stack, [*SAFE_STEPS[:1], DELETE_STEP], "pin@example.com"
        )
        assert await pinned_build(parked) == (
            VersioningBehavior.VERSIONING_BEHAVIOR_PINNED,
            V1,
        )

        # A generation waiting for Higgsfield on v1: it is AUTO_UPGRADE.
        hf = stack.emulators.higgsfield
        hf.auto_advance = False
        _, generation = await start(stack, await user_with_key(stack), "a versioned lighthouse")
        await eventually(lambda: hf.submissions(), what="the generation's submit")
        assert (await pinned_build(generation))[0] == (
            VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
        )

        async with build(stack, V2):  # the deploy: v2 beside v1, then current
            await set_current(temporal_env, deployment, V2)
            # The generation's next task runs on v2: it moved, where the parked job did not.
            hf.advance(hf.submissions()[0]["request_id"], "completed")
            assert (await generation.result()).status == "completed"
            builds = await task_builds(generation)
            assert builds[0] == V1 and builds[-1] == V2, builds
            assert await pinned_build(generation) == (
                VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE,
                V2,
            )
            fresh = await start_job(stack, await job_request(stack, SAFE_STEPS[:1]))
            assert (await fresh.result()).status == "completed"
            assert set(await task_builds(fresh)) == {V2}

            # The parked job's reply is handled by v1, where the job started.
            await reply(stack, sent["id"], "Approve")
            assert (await parked.result()).status == "completed"
            assert set(await task_builds(parked)) == {V1}

            # Roll back: v1 is current again, and new jobs start there.
            await set_current(temporal_env, deployment, V1)
            back = await start_job(stack, await job_request(stack, SAFE_STEPS[:1]))
            assert (await back.result()).status == "completed"
            assert set(await task_builds(back)) == {V1}


@pytest.mark.parametrize(
    ("name", "build", "said"),
    [
        ("orchestrator", None, "missing setting WORKER_BUILD_ID"),
        (None, V2, "missing setting WORKER_DEPLOYMENT_NAME"),
    ],
)
def test_half_a_version_is_refused_with_one_line(
    name: str | None, build: str | None, said: str
) -> None:
    settings = load_settings(worker_deployment_name=name, worker_build_id=build)
    with pytest.raises(SettingsError) as refused:
        settings.deployment_version()
    assert str(refused.value.code).startswith(said)


@pytest.mark.parametrize("value", ["v 2", "", "ä", "x" * 256, "a/b", "__unversioned__", "v2\n"])
def test_a_build_id_outside_temporals_alphabet_is_refused(value: str) -> None:
    if value == "":  # empty is unset: versioning off
        assert load_settings(worker_build_id=value).deployment_version() is None
        return
    with pytest.raises(SettingsError, match="invalid setting WORKER_BUILD_ID"):
        load_settings(worker_build_id=value)


@pytest.mark.parametrize("value", ["v2.1", "orchestrator.eu", "a b", "ä", "x" * 256, ".x"])
def test_a_deployment_name_with_a_dot_or_outside_the_alphabet_is_refused(value: str) -> None:
    # The version's canonical string is "<name>.<build id>", split at the first dot.
    with pytest.raises(SettingsError, match="invalid setting WORKER_DEPLOYMENT_NAME"):
        load_settings(worker_deployment_name=value)


@pytest.mark.parametrize("value", ["1.4.2", "2026-12-04.1", "v2_rc-1", "9f3c2ab", "x" * 255])
def test_image_tags_and_commits_are_build_ids(value: str) -> None:
    settings = load_settings(worker_deployment_name="orchestrator", worker_build_id=value)
    assert settings.deployment_version() == ("orchestrator", value)


def test_without_a_version_the_worker_is_unversioned() -> None:
    assert load_settings().deployment_version() is None
    assert load_settings(
        worker_deployment_name="o", worker_build_id="b-1"
    ).deployment_version() == (
        "o",
        "b-1",
    )


def test_every_workflow_type_has_its_versioned_twin_with_its_behavior() -> None:
    from temporalio.common import VersioningBehavior as Behavior
    from temporalio.workflow import _Definition

    from workers.worker import ALL_WORKFLOWS
    from workflows.versioned import VERSIONED_WORKFLOWS

    plain = {_Definition.must_from_class(cls).name: cls for cls in ALL_WORKFLOWS}
    versioned = {
        d.name: d.versioning_behavior
        for d in (_Definition.must_from_class(cls) for cls in VERSIONED_WORKFLOWS)
    }
    # A type added to the worker without a versioned twin would be missing from versioned
    # workers; the job waits for days at its gates: pinned. The others move on.
    assert set(versioned) == set(plain)
    assert versioned.pop("AgentJob") == Behavior.PINNED
    assert set(versioned.values()) == {Behavior.AUTO_UPGRADE}
    # The plain classes carry no behavior: an unversioned worker must not send one.
    for cls in ALL_WORKFLOWS:
        assert _Definition.must_from_class(cls).versioning_behavior in (
            None,
            Behavior.UNSPECIFIED,
        )
