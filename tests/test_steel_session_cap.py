"""Steel's concurrent-session cap: a job refused a session (429) waits for one, as a benign
wait before each next attempt, and runs once another job releases its session."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import steel
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationErrorCategory
from temporalio.testing import WorkflowEnvironment

from activities.browser import SESSION_WAIT, sessions_full
from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job


async def open_session_failures(handle: Any) -> list[Any]:
    """The last failure before each open_session attempt that started after a first one
    (a history keeps only the started event of an activity's last attempt)."""
    scheduled: dict[int, str] = {}
    failures = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if scheduled[started.scheduled_event_id] == "open_session" and started.attempt > 1:
                failures.append(started.last_failure)
    return failures


async def test_a_job_beyond_the_cap_waits_for_a_session_then_runs(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        cap = stack.emulators.steel
        cap.concurrent_sessions = 1
        _, parked, sent = await waiting_job(stack, [DELETE_STEP], "cap@example.com")
        second = await start_job(stack, await job_request(stack, SAFE_STEPS[:1]))

        async def refused_a_few_times() -> Any:
            description = await second.describe()
            for pending in description.raw_description.pending_activities:
                if pending.activity_type.name == "open_session" and pending.attempt >= 3:
                    return pending
            return None

        pending: Any = await eventually(refused_a_few_times, what="the second job's session waits")
        info = pending.last_failure.application_failure_info
        assert info.type == "BrowserSessionsFull"
        assert info.next_retry_delay.ToTimedelta() == timedelta(seconds=1)  # Steel's Retry-After
        assert cap.created_count() == 1  # the cap held

        # The parked job ends and releases its session: the second one gets it and runs.
        await reply(stack, sent["id"], "Approve")
        assert (await parked.result()).status == "completed"
        assert (await second.result()).status == "completed"
        assert cap.created_count() == 2
        # The history keeps the attempt that succeeded, with the failure before it: a wait.
        [last] = await open_session_failures(second)
        assert last.application_failure_info.type == "BrowserSessionsFull"


def rate_limited(headers: dict[str, str]) -> steel.RateLimitError:
    request = httpx.Request("POST", "https://api.steel.dev/v1/sessions")
    response = httpx.Response(429, headers=headers, request=request)
    return steel.RateLimitError("Concurrent session limit reached", response=response, body=None)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "1"}, timedelta(seconds=1)),
        ({"Retry-After": "2.5"}, timedelta(seconds=2.5)),
        ({"retry-after": "3600"}, SESSION_WAIT),  # capped: a session may free sooner
        ({"retry-after": "0"}, SESSION_WAIT),
        ({"retry-after": "-4"}, SESSION_WAIT),
        ({"retry-after": "nan"}, SESSION_WAIT),
        ({"retry-after": "inf"}, SESSION_WAIT),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, SESSION_WAIT),
        ({}, SESSION_WAIT),
    ],
)
def test_a_full_cap_is_a_benign_wait_never_longer_than_the_default(
    headers: dict[str, str], wait: timedelta
) -> None:
    failure = sessions_full(rate_limited(headers))
    assert failure.type == "BrowserSessionsFull" and not failure.non_retryable
    assert failure.next_retry_delay == wait
    assert failure.category == ApplicationErrorCategory.BENIGN
