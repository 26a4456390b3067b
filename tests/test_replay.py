"""Every recorded workflow history replays against the current workflow code, so a
non-deterministic change fails CI. Record anew with RECORD_HISTORIES=1 after an
intended, patched change (see README)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.sandbox_runner import CompiledSandboxRunner
from workers.worker import ALL_WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
# Every path of every workflow type must have a recorded history, and every recorded
# history is listed here, so deleting one fails instead of silently replaying less.
EXPECTED = {
    "agent_job_completed",
    "agent_job_approved_by_reply",
    "agent_job_rejected_by_reply",
    "agent_job_expired",
    "agent_job_skipped_on_expiry",
    "agent_job_cancelled",
    "agent_job_failed",
    "agent_job_add_steps",
    "agent_job_session_recreated",
    "generation_completed",
    "generation_failed",
    "generation_nsfw",
    "generation_cancelled",
    "generation_cancelled_during_submit",
    "generation_deadline",
    "generation_recovered_from_webhook",
    "generation_batch",
    "generation_batch_from_rows",  # the app's rows: children keep the rows' ids
    # Recorded before a workflow.patched() change and kept as they are: running workflows
    # started before the patch must still replay.
    "generation_completed_before_hints_patch",
    "generation_cancelled_before_submit_patch",
    "metric_sync_success",
    "metric_sync_partial",
    "metric_sync_failed",
    "metric_sync_backfill",
    "schedule_reconcile",
}


def test_every_workflow_path_has_a_recorded_history() -> None:
    recorded = {p.stem for p in HISTORIES.glob("*.json")}
    assert recorded >= EXPECTED, f"missing histories: {sorted(EXPECTED - recorded)}"
    assert recorded <= EXPECTED, f"histories not in EXPECTED: {sorted(recorded - EXPECTED)}"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=CompiledSandboxRunner(),  # as the worker runs them
    )
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    await replayer.replay_workflow(history)
