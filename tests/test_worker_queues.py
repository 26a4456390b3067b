"""`orchestrator worker --queues`: one process runs any subset of the task queues.

A worker of the workflows' queue only, in this process, and `orchestrator worker --queues
agent-jobs,email` in another (its environment says ``WORKER_QUEUES=workflows``: the flag
wins): a job's browser and email activities run in the second process, on their families'
queues, and `orchestrator health`'s checks see each process on exactly its queues.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP
from workers.health import polled, poller_checks
from workers.settings import load_settings, settings_env
from workflows.task_queues import FAMILIES

RECENT = timedelta(seconds=120)


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`orchestrator worker` with ``args``, in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def activity_workers(handle: Any) -> dict[str, set[str]]:
    """Per activity type in a workflow's history, the identities of the workers that ran
    it (local activities are the workflow worker's own, and not in these events)."""
    types: dict[int, str] = {}
    found: dict[str, set[str]] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            types[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            found.setdefault(types[started.scheduled_event_id], set()).add(started.identity)
    return found


async def test_two_processes_split_the_queues_and_health_sees_each_on_its_own(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(
        db_url, temporal_env.client, task_queue, worker_queues="workflows"
    ) as stack:
        env = settings_env(stack.settings) | {
            "TEMPORAL_ADDRESS": address,
            "LOG_LEVEL": "warning",
            "METRICS_BIND_ADDRESS": "",
        }
        assert env["WORKER_QUEUES"] == "workflows"
        vendors = start_worker(env, "--queues", "agent-jobs,email")
        identity = f"{vendors.pid}@{socket.gethostname()}"
        try:

            async def polling(queues: tuple[str, ...]) -> bool:
                checks = await poller_checks(stack.client, task_queue, identity, queues=queues)
                return all(c.ok(RECENT) for c in checks)

            # The process is up once the server has seen it poll its queues (a loaded
            # machine takes a while to start Python).
            await eventually(
                lambda: polling(("agent-jobs", "email")), timeout=120, what="the queues' polls"
            )
            _, handle, _ = await waiting_job(stack, [DELETE_STEP], "ren@example.com")
            wanted = {"open_session", "capture_screenshot", "send_approval_email"}

            async def recorded() -> dict[str, set[str]] | None:
                # The email is out before its activity's completion is in the history.
                ran = await activity_workers(handle)
                return ran if wanted <= set(ran) else None

            # The browser and the email ran in the other process, on the families' queues.
            ran = await eventually(recorded, what="the activities in the history")
            assert all(ids == {identity} for ids in ran.values()), ran

            # Not the queues it was not given.
            for queues in (("workflows",), ("generations",), ("syncs",)):
                checks = await poller_checks(stack.client, task_queue, identity, queues=queues)
                assert checks and not any(c.ok(RECENT) for c in checks), queues
            await handle.terminate("test over")
        finally:
            vendors.terminate()
            stderr = (await asyncio.to_thread(vendors.communicate, timeout=30))[1]
        assert vendors.returncode == 0, stderr.decode()


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("all", ("workflows", *FAMILIES)),
        ("workflows", ("workflows",)),
        ("email, generations", ("email", "generations")),
        ("email,email", ("email",)),  # once each
    ],
)
def test_the_queues_a_setting_names(setting: str, expected: tuple[str, ...]) -> None:
    assert load_settings(worker_queues=setting).queues == expected


@pytest.mark.parametrize(
    "setting",
    ["", ",", "bogus", "email,bogus", "all,email", "Email", "workflow", "agent_jobs", "*"],
)
def test_queues_outside_the_list_stop_the_worker_with_one_line(setting: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "worker", "--queues", setting],
        env={"PATH": "", "TEMPORAL_CONFIG_FILE": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "WORKER_QUEUES" in lines[0], result.stderr


def test_health_looks_where_the_queues_are() -> None:
    queue = "tq"
    kinds = [(kind, name) for kind, name, _ in polled(queue, ("workflows", *FAMILIES))]
    assert kinds == [
        ("workflow", "tq"),
        ("activity", "tq"),
        ("agent-jobs", "tq-agent-jobs"),
        ("email", "tq-email"),
        ("generations", "tq-generations"),
        ("syncs", "tq-syncs"),
    ]
    assert [kind for kind, _, _ in polled(queue, ("email",))] == ["email"]
