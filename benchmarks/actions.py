"""What a unit of work costs on Temporal Cloud, in billable actions.

``count_actions(history)`` prices one workflow run's recorded history by Temporal Cloud's
published action rules (docs: "Temporal Cloud Actions"); ``naive_*`` price the same
business work done the naive way (one activity per database write and per vendor call,
one upsert per search-attribute change, no local activities). ``python -m
benchmarks.scale --scenario actions`` runs the real workflows and prints both.

The rules, as published, and how each is read from a history:

- workflow started (client start, continue-as-new): ``WORKFLOW_EXECUTION_STARTED``, 1;
  a child's start is paid by its parent's command (two actions: the intent and the
  attempt, ``START_CHILD_WORKFLOW_EXECUTION_INITIATED``);
- a Schedule's run: "Schedule Start" is two actions on top of the workflow start
  (``TemporalScheduledById`` in the start's search attributes);
- activity started or retried: ``ACTIVITY_TASK_SCHEDULED``, 1, and ``attempt - 1`` of its
  ``ACTIVITY_TASK_STARTED``;
- local activities: all markers recorded by one workflow task are one action (local
  activities and ``patched()`` markers alike: the rule names RecordMarker commands), plus
  ``metering_metadata.nonfirst_local_activity_execution_attempts`` of each completion;
- timer started, explicit or a ``wait_condition`` timeout: ``TIMER_STARTED``, 1;
- signal received: ``WORKFLOW_EXECUTION_SIGNALED``, 1 (a signal-with-start is one action
  in all: we send none);
- update accepted: ``WORKFLOW_EXECUTION_UPDATE_ACCEPTED``, 1;
- search-attribute upsert: one per command, ``UPSERT_WORKFLOW_SEARCH_ATTRIBUTES`` with any
  key but ``TemporalChangeVersion`` (patches are free), and attributes given at the start
  are free;
- workflow options updated, a reset (``WORKFLOW_TASK_FAILED`` with cause reset), a Nexus
  operation scheduled or its cancel requested: 1 each.

Not in a history, so counted by design and passed in (``Breakdown.heartbeats``,
``queries``, ``rejected_updates``): activity heartbeats that reach the server (the SDK
throttles them), queries (a worker answers them; the CLI's ``jobs status`` and the UI's
stack view send one each), updates the validator rejected, workflow-task heartbeats of
local activities that outlive a workflow task (ours finish in well under 10 s), and
Schedule create/update/delete calls (``schedules reconcile``: counted there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import WorkflowHistory

CHANGE_VERSION = "TemporalChangeVersion"
SCHEDULED_BY = "TemporalScheduledById"
E = EventType


@dataclass(frozen=True)
class Breakdown:
    """Billable actions by kind; ``total`` is their sum."""

    workflow_started: int = 0
    schedule: int = 0
    child_workflows: int = 0
    activities: int = 0
    activity_retries: int = 0
    local_activity_tasks: int = 0
    local_activity_retries: int = 0
    timers: int = 0
    signals: int = 0
    updates: int = 0
    upserts: int = 0
    other: int = 0  # options updated, resets, Nexus operations
    # Not in a history: by design, or measured elsewhere.
    heartbeats: int = 0
    queries: int = 0
    rejected_updates: int = 0

    @property
    def total(self) -> int:
        """Every action of the run."""
        return sum(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: Breakdown) -> Breakdown:
        return Breakdown(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int]:
        """The non-zero kinds and the total."""
        return {k: v for k, v in asdict(self).items() if v} | {"total": self.total}


def count_actions(history: WorkflowHistory | History | Iterable[HistoryEvent]) -> Breakdown:
    """The billable actions of one workflow run, from its event history, by Temporal
    Cloud's published rules (module docstring). Replays cost nothing and are not in a
    history, so the count is the same however often the run was replayed."""
    events = list(history.events if isinstance(history, WorkflowHistory | History) else history)
    counts: dict[str, int] = {}
    marker_tasks: set[int] = set()

    def add(kind: str, n: int = 1) -> None:
        counts[kind] = counts.get(kind, 0) + n

    for event in events:
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = event.workflow_execution_started_event_attributes
            if not started.HasField("parent_workflow_execution"):
                add("workflow_started")
            if SCHEDULED_BY in started.search_attributes.indexed_fields:
                add("schedule", 2)
        elif kind == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            add("child_workflows", 2)
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            add("activities")
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            add(
                "activity_retries", max(0, event.activity_task_started_event_attributes.attempt - 1)
            )
        elif kind == E.EVENT_TYPE_MARKER_RECORDED:
            marker_tasks.add(
                event.marker_recorded_event_attributes.workflow_task_completed_event_id
            )
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            metering = event.workflow_task_completed_event_attributes.metering_metadata
            add("local_activity_retries", metering.nonfirst_local_activity_execution_attempts)
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            add("timers")
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            add("signals")
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            add("updates")
        elif kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            keys = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if set(keys.indexed_fields) - {CHANGE_VERSION}:
                add("upserts")
        elif kind in (
            E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED,
            E.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
            E.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
        ):
            add("other")
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            cause = event.workflow_task_failed_event_attributes.cause
            if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW:
                add("other")
    add("local_activity_tasks", len(marker_tasks))
    return Breakdown(**{k: v for k, v in counts.items() if v})


def count_history_json(text: str, workflow_id: str = "recorded") -> Breakdown:
    """``count_actions`` of a history saved as JSON (``tests/histories/*.json``)."""
    return count_actions(WorkflowHistory.from_json(workflow_id, text))


# The naive design: the same business work, each database write and each vendor call an
# activity of its own, each search-attribute change an upsert of its own, no local
# activities; waits and messages as ours (a timer per wait, an update per decision).
# Each writer below names where our code does that write.


@dataclass(frozen=True)
class NaiveCost:
    """A naive design's actions, by kind, and why."""

    workflow_started: int
    activities: int
    upserts: int
    timers: int
    updates: int = 0
    signals: int = 0
    schedule: int = 0
    child_workflows: int = 0

    @property
    def total(self) -> int:
        """Every action."""
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, int]:
        """The non-zero kinds and the total."""
        return {k: v for k, v in asdict(self).items() if v} | {"total": self.total}


def naive_agent_job(steps: int, approvals: int, reminders: int = 0) -> NaiveCost:
    """An agent job of ``steps`` steps with ``approvals`` gates (approved by one decision
    each) and ``reminders`` reminder emails, designed naively."""
    db_writes = (
        2  # activities/jobs.py create_job: insert the job and its steps; mark it running
        + 1  # reserve_browser_session
        + 1  # open_session: the session's viewer URL
        + 2 * steps  # run_step: mark the step running; finish it (result, screenshot id)
        + approvals
        * (
            1  # capture_screenshot: the blob row
            + 1  # open_approval (approval pending, job waiting_approval)
            + 1  # send_approval_email: the message ids on the approval and the job
            + 1  # record_approval_decision (approval decided, job running)
        )
        + reminders  # send_approval_email(reminder): reminded_at
        + 1  # finish_job
    )
    vendor_calls = (
        1  # Steel: create the session
        + 1  # Supermemory: recall
        + steps  # Steel: one computer-API call per step
        + approvals * 2  # Steel screenshot; Resend request email
        + reminders  # Resend reminder email
        + 1  # Steel: release
        + 1  # Supermemory: store the outcome
    )
    upserts = (
        2  # Platform, JobStatus=running (UserId and JobStatus=pending come with the start)
        + approvals * 4  # JobStatus waiting / AwaitingSince set / unset / JobStatus running
        + 1  # JobStatus at the end
    )
    return NaiveCost(
        workflow_started=1,
        activities=db_writes + vendor_calls,
        upserts=upserts,
        timers=approvals + reminders,  # the wait for a decision; the wait after a reminder
        updates=approvals,
    )


def naive_generation() -> NaiveCost:
    """One generation completed by Higgsfield's webhook, designed naively."""
    db_writes = (
        1  # activities/higgsfield.py create_generation: the row
        + 1  # take_slot: the slot
        + 1  # submit_generation: claim the submission
        + 1  # submit_generation: record the request id (queued)
        + 1  # check_generation: completed, with the result URLs
        + 1  # save_results: the asset row (one per file; one file here)
        + 1  # save_results: the saved asset ids on the generation
    )
    vendor_calls = (
        1  # Higgsfield: submit
        + 1  # Higgsfield: read the status the webhook announced
        + 1  # the result file into asset storage
    )
    # GenerationStatus: submitting, queued, completed (UserId, Model and pending come
    # with the start).
    upserts = 3
    return NaiveCost(
        workflow_started=1,
        activities=db_writes + vendor_calls,
        upserts=upserts,
        timers=1,  # the wait for the webhook, bounded by the deadline
        signals=1,  # the webhook's hint
    )


def naive_metric_sync() -> NaiveCost:
    """One scheduled metric sync of a connection, one page pulled, designed naively."""
    return NaiveCost(
        workflow_started=1,
        schedule=2,
        activities=(
            1  # activities/metric_sync.py open_metric_sync: the sync log
            + 1  # pull_metrics: read the page from the platform
            + 1  # pull_metrics: upsert its rows
            + 1  # close_metric_sync: the log
            + 1  # close_metric_sync: the connection's last sync
        ),
        upserts=1,  # SyncOutcome (ConnectionId and Platform come with the scheduled start)
        timers=0,
    )


def naive_reminder() -> NaiveCost:
    """What one approval reminder adds to a job, designed naively."""
    job = naive_agent_job(5, 1, reminders=1)
    base = naive_agent_job(5, 1)
    return NaiveCost(
        workflow_started=0,
        activities=job.activities - base.activities,
        upserts=job.upserts - base.upserts,
        timers=job.timers - base.timers,
    )
