"""Malformed input at every workflow entry (start, update, signal) and at the CLI: refused
before anything changes, the waiting workflows unaffected, errors one clear line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.conftest import create_database
from tests.encryption import TEST_MASTER_KEY
from tests.harness import running_stack
from tests.security import World, waiting_world
from tests.waiting import eventually
from workflows.models.agent_job import AgentJobInput
from workflows.models.generation import GenerationInput

PROPERTY = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ZERO = "00000000-0000-0000-0000-000000000000"

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
junk = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner)
)


@pytest.fixture(scope="module")
async def world(
    pg_admin_url: str, template_url: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[World]:
    """One waiting job and one queued generation for this module."""
    db_url = await create_database(pg_admin_url)
    async with running_stack(db_url, temporal_env.client, f"test-{uuid.uuid4()}") as stack:
        found = await waiting_world(stack, db_url)
        yield found
        await found.job_handle.cancel()
        await found.generation_handle.cancel()


def _valid_job() -> dict[str, Any]:
    return {
        "job_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "workspace_id": str(uuid.uuid4()),
        "title": "t",
        "steps": [
            {"action": {"action": "navigate", "url": "https://x.test"}, "description": "open"}
        ],
    }


@st.composite
def broken_jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A job request with one field wrongly typed, out of range or unknown."""
    job = _valid_job()
    field = draw(
        st.sampled_from(["job_id", "user_id", "title", "steps", "step", "action", "approval"])
    )
    if field in ("job_id", "user_id"):
        job[field] = draw(scalars.filter(lambda v: not _is_uuid(v)))
    elif field == "title":
        job["title"] = draw(st.sampled_from(["", "x" * 201]) | st.integers() | st.none())
    elif field == "steps":
        job["steps"] = draw(st.text(min_size=1) | st.integers() | st.just([{}] * 201))
    elif field == "step":
        job["steps"][0] |= draw(
            st.sampled_from([{"risk": "nuke"}, {"description": ""}, {"extra": 1}])
        )
    elif field == "action":
        job["steps"][0]["action"] = draw(
            st.sampled_from(
                [
                    {"action": "fly"},
                    {"action": "navigate", "url": "javascript:alert(1)"},
                    {"action": "wait", "duration": 3600},
                    {"action": "click_mouse", "coordinates": "here"},
                    {"action": "type_text", "text": ""},
                ]
            )
            | junk
        )
    else:
        job["approval"] = draw(
            st.sampled_from([{"on_rejection": "ignore"}, {"expires_after": "soon"}]) | scalars
        )
    return job


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def test_invalid_job_and_generation_requests_are_rejected_by_their_models() -> None:
    @PROPERTY
    @given(broken_jobs())
    def prop(job: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            AgentJobInput.model_validate(job)

    prop()
    for bad in ({}, {"prompt_text": ""}, {"prompt_text": "x" * 4001}, {"model": ""}):
        with pytest.raises(ValidationError):
            GenerationInput.model_validate(
                {"generation_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())} | bad
            )


async def _failure_of(handle: WorkflowHandle[Any, Any]) -> str:
    """Why the workflow failed: it must fail promptly, not retry its first task forever."""
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=15)
    return str(failed.value.cause)


async def test_workflows_started_with_malformed_input_leave_nothing_behind(
    world: World,
) -> None:
    queue = world.stack.settings.temporal_task_queue
    before = await world.stack.fetchall("SELECT id FROM jobs UNION ALL SELECT id FROM generations")
    bad_job = _valid_job() | {"job_id": "not-a-uuid", "steps": "all of them"}
    handle = await world.stack.client.start_workflow(
        "AgentJob", bad_job, id=f"job-bad-{uuid.uuid4()}", task_queue=queue
    )
    await _failure_of(handle)
    unknown_user = _valid_job()  # valid shape, nobody behind the ids
    handle = await world.stack.client.start_workflow(
        "AgentJob", unknown_user, id=f"job-{unknown_user['job_id']}", task_queue=queue
    )
    assert "has no profile" in await _failure_of(handle)
    for bad in (
        {"generation_id": "x", "user_id": str(uuid.uuid4()), "prompt_text": "p"},
        {"generation_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())},
        {"generation_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "prompt_text": "p"},
    ):
        handle = await world.stack.client.start_workflow(
            "Generation", bad, id=f"generation-bad-{uuid.uuid4()}", task_queue=queue
        )
        await _failure_of(handle)
    after = await world.stack.fetchall("SELECT id FROM jobs UNION ALL SELECT id FROM generations")
    assert after == before
    await world.assert_still_waiting()


async def test_malformed_updates_and_signals_are_refused_and_change_nothing(
    world: World,
) -> None:
    handle = world.job_handle
    approval_id = str(world.approval["id"])
    decisions: list[Any] = [
        {},
        "approve",
        {"approval_id": "nope", "decision": "approve", "decided_by": "x"},
        {"approval_id": approval_id, "decision": "maybe", "decided_by": "x"},
        {"approval_id": approval_id, "decision": "approve", "decided_by": ""},
        {"approval_id": approval_id, "decision": "approve", "decided_by": "x" * 321},
        {"approval_id": approval_id, "decision": "approve", "decided_by": "x", "channel": "sms"},
        {"approval_id": approval_id, "decision": "approve", "decided_by": "x", "note": "n" * 2001},
        {"approval_id": str(uuid.uuid4()), "decision": "approve", "decided_by": "x"},
    ]
    steps: list[Any] = [
        {},
        {"steps": []},
        {"steps": "navigate"},
        {"steps": [{"action": {"action": "fly"}, "description": "x"}]},
        {"steps": [{"action": {"action": "take_screenshot"}, "description": "x"}] * 51},
        [1, 2, 3],
    ]
    for name, args in [("decide_approval", d) for d in decisions] + [
        ("add_steps", s) for s in steps
    ]:
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(name, args)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update("no_such_update", {})
    for bad in decisions[:4]:
        await handle.signal("decide_approval_signal", bad)
    await world.generation_handle.signal("higgsfield_webhook", {"status": 7})
    await world.generation_handle.signal("higgsfield_webhook", "completed")

    await eventually(_signals_processed(world), what="signals processed")
    await world.assert_still_waiting()
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert accepted == [], "a malformed update reached the history"
    row = await world.stack.fetchrow(
        "SELECT status, decided_by FROM approvals WHERE id = %s", world.approval["id"]
    )
    assert row == {"status": "pending", "decided_by": None}
    steps_rows = await world.stack.fetchrow(
        "SELECT count(*) AS n FROM job_steps WHERE job_id = %s", world.job_id
    )
    assert steps_rows == {"n": 2}


def _signals_processed(world: World) -> Any:
    async def probe() -> bool:
        for handle in (world.job_handle, world.generation_handle):
            history = await handle.fetch_history()
            last_signal = max(
                (
                    i
                    for i, e in enumerate(history.events)
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                ),
                default=-1,
            )
            completed = [
                i
                for i, e in enumerate(history.events)
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            ]
            if last_signal < 0 or not completed or completed[-1] < last_signal:
                return False
        return True

    return probe


# --- the CLI ------------------------------------------------------------------------------


def _cli(world: World, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    target = world.stack.client.service_client.config.target_host
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": world.db_url,
        "TEMPORAL_ADDRESS": target,
        "TEMPORAL_TASK_QUEUE": world.stack.settings.temporal_task_queue,
        "ENCRYPTION_MASTER_KEY": TEST_MASTER_KEY,
        "ORCHESTRATOR_HOME": "/nonexistent-orchestrator-home",
    }
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _job_files(tmp: Path) -> dict[str, Path]:
    files = {
        "not_json.json": b"{not json",
        "empty.json": b"",
        "list.json": b"[1, 2, 3]",
        "string.json": b'"a job"',
        "null.json": b"null",
        "binary.json": b"\xff\xfe\x00garbage",
        "wrong_types.json": json.dumps({"title": 5, "steps": "x"}).encode(),
    }
    for name, content in files.items():
        (tmp / name).write_bytes(content)
    return {name: tmp / name for name in files} | {"directory": tmp, "missing": tmp / "none.json"}


async def test_cli_refuses_bad_arguments_and_unknown_ids_in_one_line(
    world: World, tmp_path: Path
) -> None:
    unknown = str(uuid.uuid4())
    usage = [  # argparse refuses these before anything runs: exit 2
        ["jobs", "status", "not-a-uuid"],
        ["jobs", "cancel", "1234"],
        ["approvals", "show", "x"],
        ["approvals", "approve", unknown],
        ["approvals", "reject"],
        ["generations", "status", "gen-1"],
        ["generations", "start", "--prompt", "p"],
        ["generations", "list", "--limit", "many"],
        ["syncs", "trigger", "nope"],
        ["syncs", "backfill", unknown, "--since", "yesterday", "--until", "2025-01-01"],
        ["connections", "add", "--platform", "tiktok", "--account-id", "1", "--token", "t"],
        ["jobs", "start"],
        ["no-such-command"],
    ]
    failures = [  # refused with one line: exit 1
        ["jobs", "status", unknown],
        ["jobs", "cancel", unknown],
        ["approvals", "show", ZERO],
        ["approvals", "approve", unknown, "--by", "x"],
        ["generations", "status", unknown],
        ["generations", "cancel", unknown],
        ["generations", "start", "--user", unknown],
        ["generations", "start", "--user", unknown, "--prompt", "p", "--setting", "novalue"],
        ["syncs", "trigger", unknown],
        ["syncs", "backfill", unknown, "--since", "2025-01-02", "--until", "2025-01-01"],
        ["syncs", "backfill", unknown, "--since", "2025-01-01", "--until", "2025-01-02"],
    ]
    failures += [["jobs", "start", "--file", str(p)] for p in _job_files(tmp_path).values()]
    runs = await asyncio.gather(
        *(asyncio.to_thread(_cli, world, *args) for args in usage + failures)
    )
    wrong = [
        (args, run.returncode, run.stderr)
        for args, run in zip(usage + failures, runs, strict=True)
        if not _one_clear_error(run, 2 if args in usage else 1)
    ]
    assert wrong == [], "\n".join(f"{a}: exit {c}: {e.strip()[-200:]}" for a, c, e in wrong)
    await world.assert_still_waiting()


def _one_clear_error(run: subprocess.CompletedProcess[str], status: int) -> bool:
    """Exit ``status``, no traceback; one ``orchestrator:`` line (after the usage for 2)."""
    lines = run.stderr.strip().splitlines()
    if run.returncode != status or "Traceback" in run.stderr or not lines:
        return False
    if status == 1:
        return len(lines) == 1 and lines[0].startswith("orchestrator: ")
    return lines[-1].startswith("orchestrator") and "error:" in lines[-1]
