"""Temporal Cloud actions: the counter reads histories by the published rules, and a real
agent job and generation cost at least 30 % fewer actions than the naive design."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload, SearchAttributes, WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import (
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    MarkerRecordedEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes,
)
from temporalio.common import TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from benchmarks.actions import (
    Breakdown,
    count_actions,
    count_history_json,
    naive_agent_job,
    naive_generation,
)
from tests.generations.helpers import start, user_with_key
from tests.harness import running_stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS
from workflows.search_attributes import AWAITING_SINCE, JOB_STATUS, PLATFORM, USER_ID

HISTORIES = Path(__file__).parent / "histories"
E = EventType

# Recorded histories and their actions, counted by hand from the events by the rules.
RECORDED = {
    # start; open_session, recall, 3 steps, screenshot, email, release, memory; marker
    # tasks: first (patches, create_job, reserve), open_approval, the decision, finish_job;
    # the gate's timer; the decision update; upserts: running+platform, waiting+since,
    # running+since unset, completed.
    "agent_job_approved_by_reply": Breakdown(
        workflow_started=1,
        activities=9,
        local_activity_tasks=4,
        timers=1,
        updates=1,
        upserts=4,
    ),
    # The same path before the patch: seven upsert commands.
    "agent_job_approved_by_reply_before_upserts_patch": Breakdown(
        workflow_started=1,
        activities=9,
        local_activity_tasks=4,
        timers=1,
        updates=1,
        upserts=7,
    ),
    "generation_completed": Breakdown(
        workflow_started=1,
        activities=3,
        local_activity_tasks=2,
        timers=1,
        signals=1,
        upserts=3,
    ),
    # The hints patch's marker came in a task of its own: one more action.
    "generation_completed_before_upserts_patch": Breakdown(
        workflow_started=1,
        activities=3,
        local_activity_tasks=3,
        timers=1,
        signals=1,
        upserts=4,
    ),
    # Started by its Schedule: two actions for the schedule, one for the start.
    "metric_sync_success": Breakdown(
        workflow_started=1, schedule=2, activities=1, local_activity_tasks=2, upserts=1
    ),
    # Five children, two actions each; the children's own starts are theirs, not here.
    "generation_batch": Breakdown(workflow_started=1, child_workflows=10, local_activity_tasks=1),
    # A release that failed ten attempts: nine retries.
    "agent_job_release_failed": Breakdown(
        workflow_started=1,
        activities=6,
        activity_retries=9,
        local_activity_tasks=2,
        upserts=3,
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_histories_count_by_the_rules(name: str) -> None:
    counted = count_history_json((HISTORIES / f"{name}.json").read_text())
    assert counted == RECORDED[name]


def _event(kind: EventType.ValueType, **attributes: Any) -> HistoryEvent:
    return HistoryEvent(event_type=kind, event_time=Timestamp(seconds=1), **attributes)


def _attrs(*names: str) -> SearchAttributes:
    return SearchAttributes(indexed_fields={n: Payload(data=b'"x"') for n in names})


def _marker(task: int, name: str = "core_local_activity") -> HistoryEvent:
    return _event(
        E.EVENT_TYPE_MARKER_RECORDED,
        marker_recorded_event_attributes=MarkerRecordedEventAttributes(
            marker_name=name, workflow_task_completed_event_id=task
        ),
    )


def _upsert(*names: str) -> HistoryEvent:
    return _event(
        E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        upsert_workflow_search_attributes_event_attributes=(
            UpsertWorkflowSearchAttributesEventAttributes(search_attributes=_attrs(*names))
        ),
    )


def _started(*, parent: bool = False, attributes: tuple[str, ...] = ()) -> HistoryEvent:
    started = WorkflowExecutionStartedEventAttributes(search_attributes=_attrs(*attributes))
    if parent:
        started.parent_workflow_execution.CopyFrom(WorkflowExecution(workflow_id="parent"))
    return _event(
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, workflow_execution_started_event_attributes=started
    )


def _attempt(n: int) -> HistoryEvent:
    return _event(
        E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(attempt=n),
    )


def _task_completed(retries: int = 0) -> HistoryEvent:
    completed = WorkflowTaskCompletedEventAttributes()
    completed.metering_metadata.nonfirst_local_activity_execution_attempts = retries
    return _event(
        E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, workflow_task_completed_event_attributes=completed
    )


def _task_failed(cause: WorkflowTaskFailedCause.ValueType) -> HistoryEvent:
    return _event(
        E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        workflow_task_failed_event_attributes=WorkflowTaskFailedEventAttributes(cause=cause),
    )


# Events, and what they must cost; free things first, each a way to over-bill.
CASES: list[tuple[str, list[HistoryEvent], Breakdown]] = [
    (
        "a patch's TemporalChangeVersion upsert is free",
        [_upsert("TemporalChangeVersion")],
        Breakdown(),
    ),
    (
        "an upsert with a real key is one",
        [_upsert("TemporalChangeVersion", "JobStatus")],
        Breakdown(upserts=1),
    ),
    (
        "several keys in one command are one",
        [_upsert("JobStatus", "AwaitingSince")],
        Breakdown(upserts=1),
    ),
    ("two commands are two", [_upsert("JobStatus"), _upsert("JobStatus")], Breakdown(upserts=2)),
    ("a child's own start is its parent's", [_started(parent=True)], Breakdown()),
    (
        "attributes at the start are free",
        [_started(attributes=("JobStatus", "UserId"))],
        Breakdown(workflow_started=1),
    ),
    (
        "a scheduled run: three",
        [_started(attributes=("TemporalScheduledById",))],
        Breakdown(workflow_started=1, schedule=2),
    ),
    (
        "a child started: two",
        [_event(E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)],
        Breakdown(child_workflows=2),
    ),
    (
        "the first attempt is no retry",
        [_event(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), _attempt(1)],
        Breakdown(activities=1),
    ),
    (
        "attempt 4: three retries",
        [_event(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), _attempt(4)],
        Breakdown(activities=1, activity_retries=3),
    ),
    (
        "markers of one task are one",
        [_marker(4), _marker(4, "core_patch"), _marker(4)],
        Breakdown(local_activity_tasks=1),
    ),
    ("markers of two tasks are two", [_marker(4), _marker(9)], Breakdown(local_activity_tasks=2)),
    (
        "a patch marker alone in a task is one",
        [_marker(7, "core_patch")],
        Breakdown(local_activity_tasks=1),
    ),
    (
        "local activity retries are metered",
        [_task_completed(retries=2)],
        Breakdown(local_activity_retries=2),
    ),
    (
        "a reset is one",
        [_task_failed(WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW)],
        Breakdown(other=1),
    ),
    (
        "another task failure is free",
        [_task_failed(WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND)],
        Breakdown(),
    ),
    (
        "an external signal is billed where it lands",
        [_event(E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)],
        Breakdown(),
    ),
    (
        "a signal received is one",
        [_event(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)],
        Breakdown(signals=1),
    ),
    (
        "an accepted update is one, its completion free",
        [
            _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
            _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED),
        ],
        Breakdown(updates=1),
    ),
    (
        "a timer started is one; fired and cancelled free",
        [
            _event(E.EVENT_TYPE_TIMER_STARTED),
            _event(E.EVENT_TYPE_TIMER_FIRED),
            _event(E.EVENT_TYPE_TIMER_CANCELED),
        ],
        Breakdown(timers=1),
    ),
    (
        "task bookkeeping is free",
        [
            _event(E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
            _event(E.EVENT_TYPE_WORKFLOW_TASK_STARTED),
            _task_completed(),
            _event(E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
            _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
        ],
        Breakdown(),
    ),
    (
        "options updated is one",
        [_event(E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED)],
        Breakdown(other=1),
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule(events: list[HistoryEvent], expected: Breakdown) -> None:
    assert count_actions(events) == expected


def test_totals_add_what_no_history_holds() -> None:
    counted = Breakdown(activities=2, upserts=1) + Breakdown(heartbeats=3, queries=1)
    assert counted.total == 7
    assert counted.as_dict() == {
        "activities": 2,
        "upserts": 1,
        "heartbeats": 3,
        "queries": 1,
        "total": 7,
    }


def test_naive_design_grows_with_the_work() -> None:
    """The naive model is a function of the business steps, not a constant."""
    one = naive_agent_job(1, 0)
    five = naive_agent_job(5, 0)
    gated = naive_agent_job(5, 1)
    assert five.activities - one.activities == 4 * 3  # per step: two writes and a call
    assert gated.total - five.total == 6 + 4 + 1 + 1  # writes+calls, upserts, timer, update
    assert naive_agent_job(5, 1, reminders=1).total - gated.total == 3


async def test_an_agent_job_costs_30_percent_fewer_actions_than_the_naive_design(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Five steps, one approval answered by email; its search attributes are still right
    at the gate and at the end, with one upsert command per state change."""
    steps = [SAFE_STEPS[0], SAFE_STEPS[1], DELETE_STEP, SAFE_STEPS[2], SAFE_STEPS[0]]
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, steps, "perf@example.com")

        async def parked() -> TypedSearchAttributes | None:
            attrs = (await handle.describe()).typed_search_attributes
            return attrs if attrs.get(AWAITING_SINCE) is not None else None

        waiting: TypedSearchAttributes = await eventually(parked, what="AwaitingSince at the gate")
        assert waiting.get(JOB_STATUS) == "waiting_approval"
        assert waiting.get(USER_ID) == str(request.user_id)
        assert waiting.get(PLATFORM) == "Notion"
        await reply(stack, sent["id"], "Approve")
        assert (await handle.result()).status == "completed"
        ended = (await handle.describe()).typed_search_attributes
        assert ended.get(JOB_STATUS) == "completed" and ended.get(AWAITING_SINCE) is None
        assert ended.get(USER_ID) == str(request.user_id) and ended.get(PLATFORM) == "Notion"
        ours = count_actions(await handle.fetch_history())
    assert ours.upserts == 4  # running, waiting, running, completed: seven before
    assert ours.total <= 0.7 * naive_agent_job(5, 1).total, ours.as_dict()


async def test_a_generation_costs_30_percent_fewer_actions_than_the_naive_design(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await user_with_key(stack)
        _, handle = await start(stack, user_id, "a lighthouse at dusk")
        assert (await handle.result()).status == "completed"
        ours = count_actions(await handle.fetch_history())
    assert ours.upserts == 3  # submitting, queued, completed: the user and model came free
    assert ours.total <= 0.7 * naive_generation().total, ours.as_dict()
