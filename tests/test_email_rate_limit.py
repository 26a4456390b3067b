"""Resend's per-team rate limit: the email queue's server-side rate keeps sends under it,
and a 429 becomes a wait before the next attempt, never a failure a workflow sees."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from resend.exceptions import RateLimitError, ResendError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import WorkflowEnvironment

from activities.email import classify_resend_error, throttle_delay
from tests.harness import Stack, running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row, last_delivery, reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, job_request, start_job

GATES = 20
TEAM_LIMIT = 4  # requests a second, for the emulator and for the worker's setting


async def sent_count(stack: Stack) -> int:
    row = await stack.fetchrow(
        "SELECT count(*) AS n FROM approvals WHERE email_message_id IS NOT NULL"
    )
    return int(row["n"]) if row else 0


async def activity_failures(handle: Any) -> list[Any]:
    """The failures of activity attempts in a workflow's history."""
    failures = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failures.append(event.activity_task_failed_event_attributes.failure)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.attempt > 1:  # retried attempts leave only the last failure here
                failures.append(started.last_failure)
    return failures


async def test_twenty_gates_opened_at_once_are_emailed_within_resends_rate(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, resend_rate_limit=TEAM_LIMIT
    ) as stack:
        resend = stack.emulators.resend
        resend.rate_limit.configure(TEAM_LIMIT)
        requests = await asyncio.gather(*(job_request(stack, [DELETE_STEP]) for _ in range(GATES)))
        handles = await asyncio.gather(*(start_job(stack, r) for r in requests))

        await eventually(
            lambda: sent_count_reached(stack), timeout=120, what=f"{GATES} approval emails"
        )

        # Every gate's email went out once (Resend's idempotency keys), and was recorded.
        keys = resend.sends_by_idempotency_key()
        assert len(keys) == GATES and set(keys.values()) == {1}
        # What Resend saw: at most its limit in any one-second window; and the queue's
        # rate kept the worker from being refused more than a stray window edge.
        windows = resend.rate_limit.windows()
        assert windows and max(w["accepted"] for w in windows.values()) <= TEAM_LIMIT
        # The queue's rate (1.5 emails/s, 3 calls/s) kept the worker under the limit: a
        # 429 needs two dispatches in one window edge (up to 5 seen on a loaded machine).
        # Without it (RESEND_RATE_LIMIT=1000 here) 30 and more of the 40 calls are refused.
        assert sum(w["refused"] for w in windows.values()) <= 10, windows
        await no_429_failed_a_workflow(handles)


async def test_a_team_limit_below_the_setting_is_waited_out_not_failed(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    gates = 8
    # The worker believes the team has 16 requests/s; Resend allows 2: most calls are
    # refused at first, and each refused attempt waits the window Resend names.
    async with running_stack(
        db_url, temporal_env.client, task_queue, resend_rate_limit=16
    ) as stack:
        resend = stack.emulators.resend
        resend.rate_limit.configure(2)
        requests = await asyncio.gather(*(job_request(stack, [DELETE_STEP]) for _ in range(gates)))
        handles = await asyncio.gather(*(start_job(stack, r) for r in requests))
        await eventually(lambda: sent_reached(stack, gates), timeout=120, what="every email")
        keys = resend.sends_by_idempotency_key()
        assert len(keys) == gates and set(keys.values()) == {1}
        windows = resend.rate_limit.windows()
        assert sum(w["refused"] for w in windows.values()) > 0  # Resend did refuse
        assert max(w["accepted"] for w in windows.values()) <= 2
        await no_429_failed_a_workflow(handles, expect_waits=True)


async def no_429_failed_a_workflow(handles: list[Any], *, expect_waits: bool = False) -> None:
    """Each job waits at its gate; the only failed attempts in the histories are benign
    waits named by Resend (``ResendRateLimited``), then the attempt that succeeded."""
    waits = 0
    for handle in handles:
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        for failure in await activity_failures(handle):
            info = failure.application_failure_info
            assert failure.HasField("application_failure_info"), failure
            assert (
                info.type == "ResendRateLimited"
                and info.next_retry_delay.ToTimedelta() > timedelta(0)
            ), failure
            waits += 1
        await handle.terminate("test over")
    assert waits > 0 if expect_waits else True


async def sent_count_reached(stack: Stack) -> bool:
    return await sent_count(stack) >= GATES


async def sent_reached(stack: Stack, n: int) -> bool:
    return await sent_count(stack) >= n


def test_the_email_queue_leaves_a_quarter_of_the_limit_to_the_ingress() -> None:
    from workers.settings import load_settings

    assert load_settings(resend_rate_limit=2).email_activities_per_second == 0.75
    assert load_settings(resend_rate_limit=5).email_activities_per_second == 1.875


async def test_a_reply_read_throttled_for_a_moment_decides_in_the_same_delivery(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, [DELETE_STEP], "kai@example.com")
        # Resend's Receiving read is refused once with a one-second wait: the ingress waits
        # it out and reads again, instead of leaving the reply to a redelivery minutes later.
        stack.emulators.resend.faults.fail_next(
            1, status=429, retry_after=1, path_prefix="/emails/receiving"
        )
        await reply(stack, sent["id"], "Approve")
        assert last_delivery(stack)["status"] == 200
        assert stack.emulators.resend.faults.injected_count() == 1
        assert (await handle.result()).status == "completed"
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decision_channel"]) == ("approved", "email")


async def test_a_reply_read_throttled_for_long_is_redelivered_not_lost(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, [DELETE_STEP], "noa@example.com")
        stack.emulators.resend.faults.fail_next(
            1, status=429, retry_after=30, path_prefix="/emails/receiving"
        )
        await reply(stack, sent["id"], "Reject")
        first = last_delivery(stack)
        # Too long to wait inside the request: 503, nothing recorded, Resend redelivers.
        assert first["status"] == 503
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        handled = await stack.fetchall("SELECT * FROM webhook_events")
        assert handled == []
        assert await asyncio.to_thread(stack.emulators.resend.redeliver, first["svix_id"]) == 200
        row = await eventually(
            lambda: decided_row(stack, request.job_id), what="the decision from the redelivery"
        )
        assert (row["status"], row["decision_channel"]) == ("rejected", "email")
        assert (await handle.result()).status == "cancelled"  # rejected: the job stops


async def decided_row(stack: Stack, job_id: object) -> dict[str, Any] | None:
    row = await approval_row(stack, job_id)
    return row if row["status"] != "pending" else None


def rate_limited(headers: dict[str, str]) -> RateLimitError:
    return RateLimitError("Too many requests", "rate_limit_exceeded", "429", headers=headers)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "1"}, timedelta(seconds=1)),
        ({"Retry-After": "2"}, timedelta(seconds=2)),  # any case
        ({"retry-after": "0.5"}, timedelta(seconds=0.5)),
        ({"ratelimit-reset": "3"}, timedelta(seconds=3)),  # no retry-after: the reset
        ({"retry-after": "soon", "ratelimit-reset": "2"}, timedelta(seconds=2)),
        ({"retry-after": "-5"}, timedelta(seconds=1)),  # nonsense: one window
        ({"retry-after": "nan"}, timedelta(seconds=1)),
        ({"retry-after": "inf"}, timedelta(seconds=1)),
        ({"retry-after": "86400"}, timedelta(minutes=1)),  # capped: Temporal retries again
        ({}, timedelta(seconds=1)),
    ],
)
def test_a_429_becomes_a_benign_retry_after_the_wait_resend_names(
    headers: dict[str, str], wait: timedelta
) -> None:
    failure = classify_resend_error(rate_limited(headers))
    assert isinstance(failure, ApplicationError)
    assert not failure.non_retryable and failure.type == "ResendRateLimited"
    assert failure.next_retry_delay == wait
    assert failure.category == ApplicationErrorCategory.BENIGN


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ResendError("500", "application_error", "boom", ""), True),
        (ResendError("422", "validation_error", "bad to", ""), False),
        # A quota is not cured by a second's wait: Temporal's backoff, a visible failure.
        (ResendError("429", "daily_quota_exceeded", "quota", "", headers={}), True),
    ],
)
def test_other_resend_errors_keep_their_classification(error: ResendError, retryable: bool) -> None:
    failure = classify_resend_error(error)
    if retryable:
        assert failure is error
    else:
        assert isinstance(failure, ApplicationError) and failure.non_retryable
    assert throttle_delay(ValueError("not resend")) is None
