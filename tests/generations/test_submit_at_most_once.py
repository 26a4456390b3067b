"""At most one Higgsfield submission per generation, raced for real: attempts of the submit
activity run side by side against the embedded Postgres and the Higgsfield emulator, held
at the database by a lock the test owns, the way a retry runs beside an attempt Temporal
gave up on. The emulator counts what reached Higgsfield."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.higgsfield import GenerationActivities, GenerationRef, SubmitResult
from tests.generations.helpers import generation_row, user_with_key
from tests.harness import Stack, running_stack
from tests.waiting import eventually
from workers.worker import open_services

# The workflow's start-to-close timeout of the submit; a slow attempt gets a short one.
FULL_ATTEMPT = timedelta(seconds=60)
SHORT_ATTEMPT = timedelta(seconds=3)  # may start its call within 1.5 s; call bound 1 s


@asynccontextmanager
async def submit_attempts(stack: Stack) -> AsyncIterator[tuple[uuid.UUID, GenerationActivities]]:
    """A generation moved to ``submitting`` (as ``take_slot`` leaves it), and the activities
    that submit it, with the worker's real clients."""
    user_id = await user_with_key(stack)
    generation_id = uuid.uuid4()
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO generations (id, user_id, prompt_text, temporal_workflow_id) "
            "VALUES (%s, %s, 'one and only', %s)",
            (generation_id, user_id, f"generation-{generation_id}"),
        )
        await conn.execute(
            "UPDATE generations SET status = 'submitting' WHERE id = %s", (generation_id,)
        )
    async with open_services(stack.settings, stack.pool) as services:
        yield (
            generation_id,
            GenerationActivities(
                stack.pool, services.credentials, services.http, services.higgsfield
            ),
        )


def attempt(
    acts: GenerationActivities, generation_id: uuid.UUID, timeout: timedelta, number: int
) -> asyncio.Task[SubmitResult]:
    """One attempt of the submit activity, as a worker runs it, in a task of its own."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="submit_generation",
        attempt=number,
        start_to_close_timeout=timeout,
        heartbeat_timeout=timedelta(seconds=10),
    )
    ref = GenerationRef(generation_id=generation_id)
    return asyncio.create_task(env.run(acts.submit_generation, ref))


@asynccontextmanager
async def generations_locked(db_url: str) -> AsyncIterator[AsyncConnection[Any]]:
    """Hold writes to ``generations`` (reads go on) until the block ends."""
    async with await AsyncConnection.connect(db_url) as conn:
        await conn.execute("LOCK TABLE public.generations IN EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            await conn.commit()


async def writers_waiting(stack: Stack, n: int) -> bool:
    """Whether ``n`` statements wait for the lock on ``generations``."""
    row = await stack.fetchrow(
        "SELECT count(*) AS waiting FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE d.datname = current_database() AND NOT l.granted "
        "AND l.relation = 'public.generations'::regclass"
    )
    return row is not None and row["waiting"] >= n


async def test_two_concurrent_submit_attempts_submit_once(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # Both attempts read the row before either claims (the race a retry beside a live
    # attempt produces); only one may call Higgsfield.
    async with (
        running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack,
        submit_attempts(stack) as (generation_id, acts),
    ):
        async with generations_locked(db_url):
            attempts = [attempt(acts, generation_id, FULL_ATTEMPT, n) for n in (1, 2)]
            await eventually(lambda: writers_waiting(stack, 2), what="both attempts at the claim")
        results = await asyncio.gather(*attempts)
        hf = stack.emulators.higgsfield
        assert hf.submission_count() == 1
        request_id = hf.submissions()[0]["request_id"]
        row = await generation_row(stack, generation_id)
    assert row["higgsfield_job_id"] == request_id and row["status"] == "queued"
    assert sorted(r.outcome for r in results) in (["submitted", "unknown"], ["submitted"] * 2)
    assert {r.request_id for r in results if r.outcome == "submitted"} == {request_id}


async def test_attempt_stalled_past_its_window_does_not_submit_beside_its_retry(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # Attempt 1 read the row and then stalled (here: on the database) for longer than its
    # start-to-close timeout allows; Temporal has started attempt 2. Attempt 1 must give
    # up without claiming, so attempt 2 submits, once.
    async with (
        running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack,
        submit_attempts(stack) as (generation_id, acts),
    ):
        async with generations_locked(db_url):
            first = attempt(acts, generation_id, SHORT_ATTEMPT, 1)
            await eventually(lambda: writers_waiting(stack, 1), what="attempt 1 at the claim")
            # It gives up once its window is gone (the old code waited for the lock).
            await asyncio.wait({first}, timeout=15)
            retry = attempt(acts, generation_id, FULL_ATTEMPT, 2)
            waiting = 1 if first.done() else 2
            await eventually(lambda: writers_waiting(stack, waiting), what="attempt 2 waiting")
        retried = await retry
        hf = stack.emulators.higgsfield
        assert hf.submission_count() == 1
        with pytest.raises(ApplicationError) as stalled:
            await first
        row = await generation_row(stack, generation_id)
    assert stalled.value.type == "SubmitWindowMissed" and not stalled.value.non_retryable
    assert retried == SubmitResult(
        outcome="submitted", request_id=hf.submissions()[0]["request_id"]
    )
    assert row["higgsfield_job_id"] == retried.request_id


async def test_slow_submit_call_is_abandoned_and_its_retry_does_not_resubmit(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # Higgsfield answers after the attempt's call bound: the attempt abandons the call
    # (which may have created the request) before its timeout, keeps its claim, and the
    # retry does not submit again; the request is learned from the webhook instead.
    async with (
        running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack,
        submit_attempts(stack) as (generation_id, acts),
    ):
        hf = stack.emulators.higgsfield
        hf.faults.latency_s = 2.0
        with pytest.raises(ApplicationError) as slow:
            await attempt(acts, generation_id, SHORT_ATTEMPT, 1)
        hf.faults.latency_s = 0.0
        retried = await attempt(acts, generation_id, FULL_ATTEMPT, 2)
        row = await generation_row(stack, generation_id)
        # The abandoned call may or may not have created a request (the emulator drops a
        # request whose client left); the retry certainly created none.
        assert hf.submission_count() <= 1
    assert "did not answer the submit within 1s" in slow.value.message
    assert not slow.value.non_retryable
    assert retried == SubmitResult(outcome="unknown")
    assert row["submit_started_at"] is not None and row["higgsfield_job_id"] is None


async def test_refused_submit_gives_its_claim_back_for_the_retry(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # A 429 certainly did not create a request: the claim is given back and the retry
    # submits (once).
    async with (
        running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack,
        submit_attempts(stack) as (generation_id, acts),
    ):
        hf = stack.emulators.higgsfield
        hf.faults.fail_next(status=429)
        with pytest.raises(ApplicationError, match="rate limit"):
            await attempt(acts, generation_id, FULL_ATTEMPT, 1)
        assert (await generation_row(stack, generation_id))["submit_started_at"] is None
        retried = await attempt(acts, generation_id, FULL_ATTEMPT, 2)
        assert hf.submission_count() == 1
    assert retried.outcome == "submitted"
