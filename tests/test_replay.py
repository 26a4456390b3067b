"""Every recorded workflow history replays against the current workflow code, so a
non-deterministic change fails CI. Record anew with RECORD_HISTORIES=1 after an
intended, patched change (see docs/changing-workflows.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.encryption import CONVERTER
from workers.sdk_internals.compiled_sandbox import CompiledSandboxRunner
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
    "agent_job_release_failed",
    "agent_job_gate_failed",
    "agent_job_steps_added_at_the_end",
    "agent_job_quorum_approved",
    "agent_job_quorum_rejected",
    "agent_job_escalated_on_bounce",  # recorded before escalations were notified
    "agent_job_escalated_after_time",
    "agent_job_escalated_notified",  # with patch notifies-on-events: told of each
    "agent_job_delegated",
    "generation_completed",
    "generation_failed",
    "generation_nsfw",
    "generation_cancelled",
    "generation_cancelled_during_submit",
    "generation_deadline",
    "generation_recovered_from_webhook",
    "generation_batch",
    "generation_batch_child_failed",
    "generation_deadline_unreachable",
    "generation_woken_for_slot",
    "generation_batch_from_rows",  # the app's rows: children keep the rows' ids
    # Recorded before a workflow.patched() change and kept as they are: running workflows
    # started before the patch must still replay.
    "generation_completed_before_hints_patch",
    "generation_cancelled_before_submit_patch",
    "agent_job_expired_before_final_rows_patch",
    "agent_job_add_steps_before_final_rows_patch",
    "agent_job_approved_by_reply_before_upserts_patch",
    "agent_job_expired_before_upserts_patch",
    "generation_completed_before_upserts_patch",
    "metric_sync_success_before_upserts_patch",
    "generation_deadline_before_bounded_patch",
    "generation_batch_before_reports_each_patch",
    "metric_sync_failed_before_log_patch",
    "schedule_reconcile_before_sweep_patch",
    "metric_sync_success",
    "metric_sync_partial",
    "metric_sync_failed",
    "metric_sync_backfill",
    "metric_sync_cancelled",
    "metric_sync_deadline",
    "schedule_reconcile",
    "schedule_reconcile_sweep",
    "schedule_reconcile_before_housekeeping_patch",
    # Housekeeping (issue 28).
    "token_refresh_not_due",
    "token_refresh_refreshed",
    "token_refresh_threads",
    "token_refresh_revoked",
    "retention",
    "dashboard_refresh",
    "dashboard_refresh_skipped",
    # Notifications (issue 27): the runs that raise events (patch notifies-on-events; the
    # histories recorded before it above replay without them), and each delivery path.
    "agent_job_failed_notified",
    "agent_job_rejected_notified",
    "generation_nsfw_notified",
    "metric_sync_partial_notified",
    "notification_sent",
    "notification_refused",
    "notification_retried",
    "notification_unknown",
    "notification_rate_limited",
}


def test_every_workflow_path_has_a_recorded_history() -> None:
    recorded = {p.stem for p in HISTORIES.glob("*.json")}
    assert recorded >= EXPECTED, f"missing histories: {sorted(EXPECTED - recorded)}"
    assert recorded <= EXPECTED, f"histories not in EXPECTED: {sorted(recorded - EXPECTED)}"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=CONVERTER,  # the worker's: decrypts ours, passes the rest through
        workflow_runner=CompiledSandboxRunner(),  # as the worker runs them
    )
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    await replayer.replay_workflow(history)
