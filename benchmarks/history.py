"""What one workflow run costs the Temporal server, read from its history."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

# Event → token: activity scheduled, local activity (marker), timer, update accepted /
# completed, signal. The order of tokens is the order of the workflow's steps.
_TOKENS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "A",
    EventType.EVENT_TYPE_MARKER_RECORDED: "L",
    EventType.EVENT_TYPE_TIMER_STARTED: "T",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "U",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: "u",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "S",
}

LA_MARKER = "core_local_activity"


async def history_counts(handle: WorkflowHandle) -> tuple[list[str], dict[str, int]]:
    """The step tokens of a finished run and its counts of server round trips by kind."""
    history = await handle.fetch_history()
    tokens: list[str] = []
    counts = {
        "events": 0,
        "activities": 0,
        "local_activities": 0,
        "timers": 0,
        "workflow_tasks": 0,
        "updates": 0,
        "signals": 0,
        "patch_markers": 0,
    }
    names = {
        "A": "activities",
        "L": "local_activities",
        "T": "timers",
        "U": "updates",
        "S": "signals",
    }
    for event in history.events:
        counts["events"] += 1
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            counts["workflow_tasks"] += 1
        mark = _TOKENS.get(event.event_type)
        if mark is None:
            continue
        if mark == "L" and event.marker_recorded_event_attributes.marker_name != LA_MARKER:
            counts["patch_markers"] += 1  # workflow.patched(): no activity, no round trip
            continue
        tokens.append(mark)
        if mark in names:
            counts[names[mark]] += 1
    # Tasks the server dispatches to a worker and waits on: workflow tasks and activities.
    counts["server_round_trips"] = counts["workflow_tasks"] + counts["activities"]
    return tokens, counts
