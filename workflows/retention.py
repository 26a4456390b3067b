"""Retention: archive and delete old rows, daily, as seed 002's retention_policies say.

One heartbeating activity does the batches (``activities/retention.py``); a worker that
dies mid-run is noticed within ``HEARTBEAT`` and the retry resumes from the last cursor.
The run's clock (``workflow.now()``) fixes every cutoff, so retries agree on what goes.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.ending import failing_in_words, handlers_done

with workflow.unsafe.imports_passed_through():
    from activities.retention import ApplyRetentionInput, ApplyRetentionResult, RetentionActivities
    from workflows.models.housekeeping import RetentionInput, RetentionResult, TargetOutcome

HEARTBEAT = timedelta(seconds=30)
APPLY_TIMEOUT = timedelta(hours=12)
APPLY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5)
)


@workflow.defn(name="Retention", failure_exception_types=[ValidationError])
class Retention:
    """One daily pass of retention over every kind with a policy."""

    @workflow.run
    async def run(self, request: RetentionInput) -> RetentionResult:
        """Archive and delete in batches; show the counts."""
        workflow.set_current_details("Archiving and deleting in batches…")
        with failing_in_words():
            applied: ApplyRetentionResult = await workflow.execute_activity_method(
                RetentionActivities.apply_retention,
                ApplyRetentionInput(
                    as_of=workflow.now(),
                    batch_size=request.batch_size,
                    max_batches=request.max_batches,
                ),
                start_to_close_timeout=APPLY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=APPLY_RETRY,
                summary=f"archive and delete, {request.batch_size} rows a batch",
            )
        result = RetentionResult(targets=applied.targets)
        details = [f"{t.entity_type}: " + _counts(t) for t in applied.targets]
        details.append(
            f"{applied.batches} batches, resumed {applied.resumed} time(s)"
            + (" · stopped at max_batches: the next run goes on" if applied.more else "")
        )
        workflow.set_current_details("\n\n".join(details))
        await handlers_done()
        return result


def _counts(target: TargetOutcome) -> str:
    if target.skipped:
        return f"skipped ({target.skipped})"
    return f"{target.archived} archived, {target.purged} deleted"
