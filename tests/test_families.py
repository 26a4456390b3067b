"""Vendor families are optional: a worker without Steel keys starts, runs generations and
metric syncs, refuses agent jobs with a clear reason, and says so in its health output."""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.taskqueue.v1 import PollerInfo
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.generations.helpers import start, user_with_key
from tests.harness import running_stack
from tests.metrics import add_connection, backfill
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job
from workers.families import family_statuses, status_of
from workers.health import latest_poll, poller_checks
from workers.settings import load_settings

MASTER = base64.b64encode(bytes(range(32))).decode()
STEEL_REASON = "agent jobs are disabled on this worker: STEEL_API_KEY is not set"


def _settings(**values: object) -> object:
    keys = {"steel_api_key": "s", "supermemory_api_key": "m", "resend_api_key": "r"}
    return load_settings(encryption_master_key=MASTER, secrets_dir=None, **(keys | values))


@pytest.mark.parametrize(
    ("unset", "agent_jobs", "approval_emails"),
    [
        ({}, None, None),
        ({"steel_api_key": None}, STEEL_REASON, None),
        ({"steel_api_key": ""}, STEEL_REASON, None),  # empty is unset, not a key
        (
            {"steel_api_key": None, "supermemory_api_key": None},
            "agent jobs are disabled on this worker: "
            "STEEL_API_KEY and SUPERMEMORY_API_KEY are not set",
            None,
        ),
        (
            {"resend_api_key": None},
            "agent jobs are disabled on this worker: RESEND_API_KEY is not set",
            "approval emails are disabled on this worker: RESEND_API_KEY is not set",
        ),
    ],
)
def test_family_statuses_name_what_is_missing(
    unset: dict[str, object], agent_jobs: str | None, approval_emails: str | None
) -> None:
    statuses = {s.name: s for s in family_statuses(_settings(**unset))}  # type: ignore[arg-type]
    assert statuses["agent_jobs"].reason == agent_jobs
    assert statuses["agent_jobs"].enabled is (agent_jobs is None)
    assert statuses["approval_emails"].reason == approval_emails
    # Generations and syncs use per-user keys and per-connection tokens: always on.
    assert statuses["generations"].enabled and statuses["metric_syncs"].enabled


async def test_worker_without_steel_key_refuses_agent_jobs_and_runs_the_rest(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue, steel_api_key=None) as stack:
        assert not status_of(stack.settings, "agent_jobs").enabled
        # An agent job ends failed, with the reason on its row, after one attempt.
        request = await job_request(stack, [*SAFE_STEPS, DELETE_STEP])
        handle = await start_job(stack, request)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        job = await stack.fetchrow(
            "SELECT status, error_message FROM jobs WHERE id = %s", request.job_id
        )
        assert job == {"status": "failed", "error_message": STEEL_REASON}
        history = await handle.fetch_history()
        failed = [
            e.activity_task_failed_event_attributes.failure
            for e in history.events
            if e.HasField("activity_task_failed_event_attributes")
        ]
        assert [f.application_failure_info.non_retryable for f in failed] == [True, True]
        # open_session and store_outcome_memory (messages are encrypted in the history).
        assert {f.application_failure_info.type for f in failed} == {"FamilyDisabled"}
        assert stack.emulators.steel.created_count() == 0
        assert not stack.emulators.resend.sent_emails()  # no approval was asked for

        # Generations run on the same worker.
        user_id = await user_with_key(stack)
        _, generation = await start(stack, user_id, "a lighthouse at dawn")
        assert (await generation.result()).status == "completed"

        # So do metric syncs.
        stack.emulators.meta.configure_account("1234567", campaigns=2)
        connection = await add_connection(stack, account_id="1234567")
        sync = await (await backfill(stack, connection)).result()
        assert sync.created > 0

        # The ingress's health says which families are on.
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{stack.ingress_url}/healthz")).json()
        assert health["families"]["agent_jobs"] == {"enabled": False, "reason": STEEL_REASON}
        assert health["families"]["generations"] == {"enabled": True}


async def test_health_finds_this_hosts_worker_polling_both_queue_types(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        from tests.waiting import eventually

        async def polling() -> bool:
            checks = await poller_checks(stack.client, task_queue, None)
            return all(c.ok(timedelta(seconds=120)) for c in checks)

        await eventually(polling, what="the worker's polls")
        checks = await poller_checks(stack.client, task_queue, None)
        assert {c.kind for c in checks} == {"workflow", "activity"}
        assert all(c.identity and c.identity.endswith(f"@{socket.gethostname()}") for c in checks)
        # Another identity, or another task queue, has no poller: the check fails.
        other = await poller_checks(stack.client, task_queue, "1@another-host")
        assert all(c.identity is None and not c.ok(timedelta(hours=1)) for c in other)
        idle = await poller_checks(stack.client, f"{task_queue}-nobody", None)
        assert not any(c.ok(timedelta(hours=1)) for c in idle)


def _poller(identity: str, seconds_ago: float, now: datetime) -> PollerInfo:
    stamp = Timestamp()
    stamp.FromDatetime(now - timedelta(seconds=seconds_ago))
    return PollerInfo(identity=identity, last_access_time=stamp)


@pytest.mark.parametrize(
    ("pollers", "ok"),
    [
        ([("12@worker-host", 5)], True),
        ([("12@worker-host", 119)], True),
        ([("12@worker-host", 121)], False),  # stale: polled, then stopped
        ([("12@other-host", 1)], False),  # someone else's worker
        ([("12@worker-host.evil", 1)], False),  # a suffix is not the host
        ([("12@worker-host", 500), ("13@worker-host", 3)], True),  # the newest counts
        ([], False),
    ],
)
def test_latest_poll_judges_identity_and_age(pollers: list[tuple[str, float]], ok: bool) -> None:
    now = datetime.now(UTC)
    infos = [_poller(identity, age, now) for identity, age in pollers]
    check = latest_poll("activity", infos, lambda identity: identity.endswith("@worker-host"), now)
    assert check.ok(timedelta(seconds=120)) is ok


def test_health_command_fails_with_one_line_when_nothing_polls(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "ENCRYPTION_MASTER_KEY": MASTER,
        "TEMPORAL_CONFIG_FILE": os.devnull,
    }
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "--json", "health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "orchestrator: worker not polling: no workflow, activity poll and no agent-jobs, "
        f"email, generations, syncs queue poll by *@{socket.gethostname()} on task queue "
        f"{task_queue} in the last 120 s"
    ]
    report = json.loads(result.stdout)
    assert report["status"] == "not polling"
    assert report["families"]["agent_jobs"]["enabled"] is False  # no keys in this env
    assert "STEEL_API_KEY" in report["families"]["agent_jobs"]["reason"]


def test_health_command_without_a_server_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens
        "ENCRYPTION_MASTER_KEY": MASTER,
        "TEMPORAL_CONFIG_FILE": os.devnull,
    }
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("orchestrator: worker health unknown: cannot reach Temporal: ")


def test_health_parser_accepts_identity_and_max_age() -> None:
    from workers.cli import _parser

    args = _parser().parse_args(["health", "--identity", "1@h", "--max-age", "30"])
    assert isinstance(args, argparse.Namespace)
    assert (args.identity, args.max_age) == ("1@h", 30.0)
