"""Chaos: agent jobs with approvals, generations and metric syncs run while the worker is
SIGKILLed and restarted, Temporal restarts, Postgres is down for 20 s and the vendors
answer slowly and sometimes with 503. Afterwards every workflow must have finished as it
would have without the chaos, with each side effect done once.

CI runs ``CI_SIZE`` workflows of each kind; ``--chaos-size N`` runs N of each.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from devstack.emulators.faults import Faults
from tests.harness import Stack, running_stack
from tests.metrics import SINCE, UNTIL, expected_meta, stored_values
from tests.reliability.chaos_stack import Backends, WorkerSupervisor, own_backends
from tests.reliability.chaos_workload import (
    APPROVALS_PER_JOB,
    JOB_STEPS,
    Approver,
    Work,
    prepare,
    start_one,
)
from tests.waiting import eventually
from workers.families import FAMILIES

CI_SIZE = 3
SEED = int(os.environ.get("CHAOS_SEED", "20250307"))
POSTGRES_OUTAGE_S = 20.0
FINISH_TIMEOUT_S = 150.0  # after the last fault, for every workflow to end
FAULTS = {"error_rate": 0.05, "latency_s": 0.05}

pytestmark = pytest.mark.chaos


@dataclass(frozen=True)
class Event:
    """One thing the chaos driver does at ``at`` seconds after the start."""

    at: float
    action: str  # start, kill, restart_temporal, stop_postgres, start_postgres
    target: tuple[str, int] | None = None


def chaos_plan(rng: random.Random, work: Work, size: int) -> list[Event]:
    """Seeded times for the starts, the kills and the two outages."""
    window = 30.0 + 2 * size
    temporal_at = rng.uniform(0.2, 0.35) * window
    postgres_at = rng.uniform(0.5, 0.6) * window
    events = [
        Event(temporal_at, "restart_temporal"),
        Event(postgres_at, "stop_postgres"),
        Event(postgres_at + POSTGRES_OUTAGE_S, "start_postgres"),
    ]
    kinds = work.kinds()
    # One workflow of each kind starts just before Postgres goes: work is certainly in flight.
    just_before = {(kind, 0) for kind in ("job", "generation", "sync")}
    for target in kinds:
        at = postgres_at - 0.5 if target in just_before else rng.uniform(0, 0.7 * window)
        events.append(Event(at, "start", target))
    for _ in range(3 + size // 3):
        events.append(Event(rng.uniform(2.0, window + POSTGRES_OUTAGE_S), "kill"))
    return sorted(events, key=lambda e: e.at)


async def drive(
    events: list[Event],
    backends: Backends,
    stack: Stack,
    work: Work,
    worker: WorkerSupervisor,
    rng: random.Random,
) -> dict[str, Any]:
    """Run the plan; returns what was observed during it."""
    observed: dict[str, Any] = {"in_flight_at_postgres_stop": 0}
    started = time.monotonic()
    for event in events:
        await asyncio.sleep(max(0.0, event.at - (time.monotonic() - started)))
        worker.check()
        if event.action == "start":
            assert event.target is not None
            await start_one(stack, work, *event.target)
        elif event.action == "kill":
            await worker.kill_and_restart(rng.uniform(0.2, 2.0))
        elif event.action == "restart_temporal":
            await backends.restart_temporal(down_for=rng.uniform(2.0, 5.0))
        elif event.action == "stop_postgres":
            observed["in_flight_at_postgres_stop"] = await _running(stack)
            await backends.stop_postgres()
        elif event.action == "start_postgres":
            await backends.start_postgres()
    return observed


async def _running(stack: Stack) -> int:
    return (await stack.client.count_workflows('ExecutionStatus="Running"')).count


async def finish(stack: Stack, work: Work, worker: WorkerSupervisor) -> dict[str, Any]:
    """Wait until no workflow runs, then collect each result (or its failure)."""

    async def all_done() -> bool | None:
        worker.check()
        try:
            return len(work.handles) == len(work.kinds()) and await _running(stack) == 0
        except RPCError:
            return None  # Temporal still coming back

    try:
        await eventually(all_done, timeout=FINISH_TIMEOUT_S, what="every workflow to finish")
    except AssertionError as timeout:
        running = [w.id async for w in stack.client.list_workflows('ExecutionStatus="Running"')]
        raise AssertionError(
            f"{timeout}: still running {running}; worker stderr:\n{worker.stderr_tail()}"
        ) from None
    results: dict[str, Any] = {}
    for name, handle in work.handles.items():
        try:
            results[name] = await handle.result()
        except WorkflowFailureError as failure:
            results[name] = f"failed: {failure.cause}"
    return results


async def test_work_survives_crashes_restarts_and_outages(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    size = request.config.getoption("--chaos-size") or CI_SIZE
    rng = random.Random(SEED)
    async with (
        own_backends(tmp_path) as backends,
        running_stack(
            backends.database_url, backends.client, f"chaos-{uuid.uuid4()}", worker=False
        ) as stack,
    ):
        emulators = stack.emulators
        emulators.higgsfield.queue_s, emulators.higgsfield.run_s = 1.0, 3.0
        vendors: dict[str, Faults] = {
            "steel": emulators.steel.faults,
            "resend": emulators.resend.faults,
            "meta": emulators.meta.faults,
        }
        for faults in vendors.values():
            faults.configure(FAULTS)
            faults.fail_next(2)  # the random 503s are few at CI size: two for sure
        # A 5xx on submit leaves the outcome unknown by design (RELIABILITY.md): Higgsfield
        # gets latency and failed status reads, not failed submits.
        emulators.higgsfield.faults.latency_s = FAULTS["latency_s"]
        emulators.higgsfield.faults.fail_next(2 * size, path_prefix="/requests/")
        work = await prepare(stack, size)
        worker = WorkerSupervisor(
            stack.settings, backends.temporal.address, tmp_path / "worker.log"
        )
        worker.start()
        approver = Approver(stack, random.Random(SEED + 1))
        stop_approver = asyncio.Event()
        approving = asyncio.create_task(approver.run(stop_approver))
        try:
            events = chaos_plan(rng, work, size)
            observed = await drive(events, backends, stack, work, worker, rng)
            results = await finish(stack, work, worker)
        finally:
            stop_approver.set()
            await approving
            await approver.finish(timeout=30)
            exit_code = await worker.stop()

        assert worker.kills == sum(1 for e in events if e.action == "kill")
        assert observed["in_flight_at_postgres_stop"] > 0, "nothing ran through the outage"
        assert not worker.unexpected_exits, worker.unexpected_exits
        for name, faults in (vendors | {"higgsfield": emulators.higgsfield.faults}).items():
            assert faults.injected_count() >= 2, f"{name} was never faulted"
        async with httpx.AsyncClient() as http:  # the ingress's pool is back after the outage
            health = await http.get(f"{stack.ingress_url}/healthz")
        families = {f.name: {"enabled": True} for f in FAMILIES}  # every key given
        assert health.json() == {
            "status": "ok",
            "database": "ok",
            "temporal": "ok",
            "families": families,
        }
        assert exit_code == 0, f"worker exit {exit_code} on SIGTERM:\n{worker.stderr_tail()}"
        worker_log = (tmp_path / "worker.log").read_text("utf-8", "replace")
        for sign_of_a_bug in ("Fatal Python error", "Exception handling failed"):
            assert sign_of_a_bug not in worker_log, f"{sign_of_a_bug}: see {tmp_path}/worker.log"
        await check_outcomes(stack, work, results, approver, size)


async def check_outcomes(
    stack: Stack, work: Work, results: dict[str, Any], approver: Approver, size: int
) -> None:
    """Every workflow ended as planned, once, and the database and vendors agree."""
    bad = {n: r for n, r in results.items() if isinstance(r, str)}
    assert not bad, f"workflows failed: {bad}"
    await check_jobs(stack, work, results, approver)
    await check_generations(stack, results, size)
    await check_syncs(stack, work, results)
    await check_transition_log(stack, work)
    await check_no_open_rows(stack)


async def check_jobs(stack: Stack, work: Work, results: dict[str, Any], approver: Approver) -> None:
    """Jobs completed with every step, each approval approved once, emailed once."""
    approval_ids: set[str] = set()
    for i, job in enumerate(work.jobs):
        result = results[f"job-{i}"]
        assert result.status == "completed", result
        assert [s.status for s in result.steps] == ["completed"] * len(JOB_STEPS)
        row = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", job.job_id)
        assert row == {"status": "completed"}
        steps = await stack.fetchall(
            "SELECT status FROM job_steps WHERE job_id = %s ORDER BY step_index", job.job_id
        )
        assert [s["status"] for s in steps] == ["completed"] * len(JOB_STEPS)
        approvals = await stack.fetchall(
            "SELECT id, status, decision_channel, resend_message_id FROM approvals "
            "WHERE job_id = %s",
            job.job_id,
        )
        assert len(approvals) == APPROVALS_PER_JOB
        for a in approvals:
            assert (a["status"], a["decision_channel"]) == ("approved", "email"), a
            assert a["resend_message_id"], a
            approval_ids.add(str(a["id"]))
    assert approver.approved == approval_ids
    refused = {k: v for k, v in approver.late_rejections.items() if "applied" in v}
    assert not refused, f"a second decision was applied: {refused}"
    sends = stack.emulators.resend.sends_by_idempotency_key()
    assert sends == {f"approval-request/{a}": 1 for a in approval_ids}
    steel = stack.emulators.steel
    session_ids = {s["id"] for s in steel.sessions()}
    assert steel.created_count() == len(work.jobs)
    assert session_ids <= set(steel.released_ids()), "a browser session was never released"
    rows = await stack.fetchall(
        "SELECT steel_session_id FROM jobs WHERE id = ANY(%s)", [j.job_id for j in work.jobs]
    )
    assert {r["steel_session_id"] for r in rows} == session_ids


async def check_generations(stack: Stack, results: dict[str, Any], size: int) -> None:
    """Generations completed, each submitted to Higgsfield exactly once."""
    request_ids = set()
    for i in range(size):
        result = results[f"generation-{i}"]
        assert result.status == "completed", result
        row = await stack.fetchrow(
            "SELECT status, higgsfield_job_id, saved_asset_ids FROM generations WHERE id = %s",
            result.generation_id,
        )
        assert row is not None and row["status"] == "completed"
        assert row["higgsfield_job_id"] == result.request_id
        assert [str(a) for a in row["saved_asset_ids"]] == result.asset_ids
        request_ids.add(result.request_id)
    higgsfield = stack.emulators.higgsfield
    assert higgsfield.submission_count() == size
    assert {s["request_id"] for s in higgsfield.submissions()} == request_ids


async def check_syncs(stack: Stack, work: Work, results: dict[str, Any]) -> None:
    """Syncs succeeded, storing each expected value exactly once."""
    for i, (connection_id, account) in enumerate(work.connections):
        result = results[f"sync-{i}"]
        assert result.status == "success", result
        log = await stack.fetchrow(
            "SELECT status, metrics_created FROM metric_sync_logs WHERE id = %s", result.sync_id
        )
        assert log == {"status": "success", "metrics_created": result.created}
        stored = await stored_values(stack, connection_id)
        expected = expected_meta(stack, account, SINCE, UNTIL)
        assert len(stored) == len(set(stored)) == len(expected)
        assert set(stored) == expected


# Every status a row may stay in only while its workflow runs.
OPEN_ROWS = """
SELECT 'jobs' AS entity, id, status FROM jobs
WHERE status IN ('pending', 'running', 'waiting_approval')
UNION ALL SELECT 'approvals', id, status FROM approvals WHERE status = 'pending'
UNION ALL SELECT 'job_steps', id, status FROM job_steps WHERE status IN ('pending', 'running')
UNION ALL SELECT 'generations', id, status FROM generations
WHERE status IN ('pending', 'submitting', 'queued', 'in_progress')
UNION ALL SELECT 'metric_sync_logs', id, status FROM metric_sync_logs WHERE status = 'running'
"""


async def check_no_open_rows(stack: Stack) -> None:
    """No row is left pending or running once every workflow has ended."""
    left_open = await stack.fetchall(OPEN_ROWS)
    assert not left_open, f"rows left in a non-final state: {left_open}"


async def check_transition_log(stack: Stack, work: Work) -> None:
    """Each status transition logged once; a job's loop once per approval."""
    rows = await stack.fetchall(
        "SELECT entity, entity_id, from_status, to_status FROM status_transitions ORDER BY id"
    )
    paths: dict[tuple[str, Any], list[tuple[str | None, str]]] = defaultdict(list)
    for r in rows:
        paths[(r["entity"], r["entity_id"])].append((r["from_status"], r["to_status"]))
    loop = [("running", "waiting_approval"), ("waiting_approval", "running")]
    job_path = [(None, "pending"), ("pending", "running"), *loop * APPROVALS_PER_JOB]
    job_path.append(("running", "completed"))
    for job in work.jobs:
        assert paths.pop(("jobs", job.job_id)) == job_path
    for (entity, entity_id), path in paths.items():
        repeated = [t for t, n in Counter(path).items() if n > 1]
        assert not repeated, f"{entity} {entity_id} logged {repeated} more than once: {path}"
        assert path[0] == (None, "pending"), path
        assert path[-1][1] in ("approved", "completed"), f"{entity} {entity_id} ended {path}"
