"""Search-attribute upserts that cost what they must: on Temporal Cloud each upsert command
is a billable action (docs/performance.md, "Actions"), attributes set at the start are
free, and several attributes in one command are one action."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

# workflow.patched id (AgentJob, Generation, MetricSync): runs started with it upsert only
# attributes that change, one command per state change. Older runs replay as they ran.
ONE_UPSERT_PER_CHANGE = "one-upsert-per-change"


def upsert_changes(*updates: SearchAttributeUpdate) -> None:
    """Upsert, in one command, those of ``updates`` that change what the run holds (set
    at its start or by an earlier upsert); none if nothing changes."""
    held = workflow.info().typed_search_attributes
    changes = []
    for update in updates:
        current = held.get(update.key)
        if update.value is None:
            if current is not None:
                changes.append(update)
        elif current != update.value:
            changes.append(update)
    if changes:
        workflow.upsert_search_attributes(changes)
