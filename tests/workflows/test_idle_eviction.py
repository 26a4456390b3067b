"""Runs idle in the worker's cache are evicted; a parked job still resumes on its reply."""

from __future__ import annotations

import hashlib
import inspect

import pytest
import temporalio.bridge.worker
import temporalio.worker
from temporalio.testing import WorkflowEnvironment

import workers.idle_eviction
from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row, reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP
from workers.idle_eviction import CachedRuns, EvictingWorker, collect_due
from workers.worker import build_worker, open_services

# The SDK code workers/sdk_internals.request_eviction relies on (temporalio 1.35.0): the
# worker's private bridge worker and its eviction request. A change here means: re-read
# request_eviction against the new SDK code, then record the new digest.
EVICTION_REQUEST = "45ae28cdbec60655"


def test_the_sdk_eviction_request_is_unchanged() -> None:
    request = inspect.getsource(temporalio.bridge.worker.Worker.request_workflow_eviction)
    assert hashlib.sha256(request.encode()).hexdigest()[:16] == EVICTION_REQUEST
    created = "self._bridge_worker = temporalio.bridge.worker.Worker.create("
    assert created in inspect.getsource(temporalio.worker.Worker)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_runs_idle_long_enough_are_taken_and_each_once() -> None:
    clock = _Clock()
    runs = CachedRuns(clock)
    runs.activated("parked")
    clock.now += 10
    runs.activated("busy")
    assert runs.take_idle(10) == ["parked"]
    assert runs.take_idle(10) == []  # asked once; the eviction is on its way
    clock.now += 10
    assert runs.take_idle(10) == ["busy"]
    runs.activated("busy")  # a task reached it before the eviction did: active again
    assert "busy" in runs and runs.take_idle(10) == []
    runs.dropped("parked")
    runs.dropped("parked")  # a second removal of the same run counts once
    runs.dropped("never-seen")
    assert "parked" not in runs and len(runs) == 1
    assert runs.take_dropped() == 1 and runs.take_dropped() == 0
    assert runs.evictions_requested == 2


def test_a_run_waiting_on_a_local_activity_is_never_idle() -> None:
    # Evicting it would cancel the local activity (a database write) half way.
    clock = _Clock()
    runs = CachedRuns(clock)
    runs.activated("writing", scheduled_local=[1, 2])
    clock.now += 60
    runs.activated("writing", resolved_local=[1])  # a signal may come between
    clock.now += 60
    assert runs.take_idle(10) == []
    runs.activated("writing", resolved_local=[2])
    clock.now += 60
    assert runs.take_idle(10) == ["writing"]


def test_a_full_collection_is_due_once_the_runs_that_left_outnumber_the_cached() -> None:
    minimum = workers.idle_eviction.COLLECT_AFTER_LEFT_MIN
    assert not collect_due(minimum - 1, 0)  # a few runs' garbage waits for more
    assert collect_due(minimum, 0)
    assert not collect_due(999, 1000)  # the collection would cost more than it frees
    assert collect_due(1000, 1000)


async def test_a_parked_job_leaves_the_cache_and_resumes_on_its_reply(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One run leaving is enough for the sweep's full collection here.
    monkeypatch.setattr(workers.idle_eviction, "COLLECT_AFTER_LEFT_MIN", 1)
    async with (
        running_stack(
            db_url, temporal_env.client, task_queue, worker=False, worker_idle_eviction_seconds=1
        ) as stack,
        open_services(stack.settings, stack.pool) as services,
        build_worker(temporal_env.client, stack.settings, services) as queue_workers,
    ):
        worker = queue_workers.workflow_worker
        assert isinstance(worker, EvictingWorker)
        email = "idle@example.com"
        request, handle, sent = await waiting_job(stack, [DELETE_STEP], email)
        run_id = (await handle.describe()).run_id
        assert run_id is not None
        cached = worker.cached_runs

        # The worker had the run cached while it worked, then let it go once idle:
        # the SDK core sent the eviction this worker asked for.
        await eventually(
            lambda: cached.evictions_requested and run_id not in cached,
            what="the parked run evicted from the cache",
        )
        # The sweep after the eviction collected the run's garbage.
        await eventually(lambda: worker.full_collections >= 1, what="a full collection")
        assert (await approval_row(stack, request.job_id))["status"] == "pending"

        # The reply's workflow task replays the run from its history and goes on.
        await reply(stack, sent["id"], "Approve")
        result = await handle.result()
        assert result.status == "completed"
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "approved" and row["decision_channel"] == "email"
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
        assert job == {"status": "completed"}
        assert stack.emulators.resend.sends_by_idempotency_key() == {
            f"approval-request/{row['id']}": 1
        }
