"""Retention: archive and delete old rows as seed 002's retention_policies say.

One activity walks every step of every kind (``db/retention.py``), a batch at a time, and
heartbeats its place (step, cursor, counts) after every batch: a worker that dies is
noticed within the heartbeat timeout, and the retry resumes from the last heartbeat
instead of the start. Batches are short transactions that lock only the rows they move,
so writers of the same tables wait at most one batch. When a kind's step finishes, its
policy's ``last_archived_at`` / ``last_purged_at`` is stamped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import psycopg
from psycopg import errors
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.failures import classified
from activities.object_store import ObjectStore
from db import retention
from db.pool import Pool
from db.retention import STEPS, Policy, Step
from workflows.models.housekeeping import RetentionResult, TargetOutcome


class ApplyRetentionInput(BaseModel):
    """The run's clock (its cutoffs stay the same across retries) and batch sizes."""

    as_of: datetime
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    max_batches: Annotated[int | None, Field(ge=1)] = None


class RetentionProgress(BaseModel):
    """Heartbeat details: the step, the cursor within it, and the counts so far."""

    step_index: int = 0
    after_ts: datetime | None = None
    after_key: str | None = None
    batches: int = 0
    resumed: int = 0
    targets: dict[str, TargetOutcome] = {}


class ApplyRetentionResult(RetentionResult):
    """The counts, and whether the run stopped at ``max_batches`` with work left."""

    batches: int = 0
    resumed: int = 0
    more: bool = False


Beat = Callable[[RetentionProgress], None]


class RetentionActivities:
    """Archives and deletes, step by step."""

    def __init__(self, pool: Pool, store: ObjectStore | None = None) -> None:
        self.pool = pool
        self.store = store

    @activity.defn
    async def apply_retention(self, request: ApplyRetentionInput) -> ApplyRetentionResult:
        """Every step of every kind with a policy; resumes from the last heartbeat."""
        details = activity.info().heartbeat_details
        progress = RetentionProgress()
        if details:
            progress = RetentionProgress.model_validate(details[0])
            progress.resumed += 1
        with classified(psycopg.Error, classify_db_error):
            return await self.run(request, progress, _beat)

    async def run(
        self, request: ApplyRetentionInput, progress: RetentionProgress, beat: Beat
    ) -> ApplyRetentionResult:
        """Run the steps from ``progress`` on, calling ``beat`` after every batch."""
        async with self.pool.connection() as conn:
            policies = await retention.policies(conn)
        more = False
        while progress.step_index < len(STEPS) and not more:
            step = STEPS[progress.step_index]
            outcome = progress.targets.setdefault(
                step.entity_type, TargetOutcome(entity_type=step.entity_type)
            )
            policy = policies.get(step.entity_type)
            if policy is None:
                outcome.skipped = "no retention policy"
            elif not await self._present(step):
                outcome.skipped = outcome.skipped or f"no table {step.table}"
            elif not await self._run_step(request, policy, step, progress, outcome, beat):
                more = True  # stopped at max_batches
                continue
            elif outcome.skipped is None:
                async with self.pool.connection() as conn:
                    await retention.stamp(conn, policy, step.phase)
            progress.step_index += 1
            progress.after_ts, progress.after_key = None, None
            beat(progress)
        return ApplyRetentionResult(
            targets=list(progress.targets.values()),
            batches=progress.batches,
            resumed=progress.resumed,
            more=more,
        )

    async def _present(self, step: Step) -> bool:
        async with self.pool.connection() as conn:
            return await retention.table_present(conn, step.table)

    async def _run_step(
        self,
        request: ApplyRetentionInput,
        policy: Policy,
        step: Step,
        progress: RetentionProgress,
        outcome: TargetOutcome,
        beat: Beat,
    ) -> bool:
        """Batches of one step until it is done; False if ``max_batches`` stopped it first."""
        cutoff = policy.cutoff(step, request.as_of)
        deleter = self._delete_objects if self.store is not None else None
        while True:
            if request.max_batches is not None and progress.batches >= request.max_batches:
                return False
            async with self.pool.connection() as conn:
                try:
                    batch = await retention.run_batch(
                        conn,
                        step,
                        cutoff=cutoff,
                        after_ts=progress.after_ts,
                        after_key=progress.after_key,
                        limit=request.batch_size,
                        delete_objects=deleter,
                    )
                except (errors.UndefinedColumn, errors.DatatypeMismatch) as exc:
                    # An app's table of that name but not seed 002's shape: left alone.
                    reason = exc.diag.message_primary
                    outcome.skipped = f"{step.table} is not as seed 002 writes it ({reason})"
                    return True
            progress.batches += 1
            if step.phase == "archive":
                outcome.archived += batch.moved
            else:
                outcome.purged += batch.moved
            if batch.last_ts is not None:
                progress.after_ts, progress.after_key = batch.last_ts, batch.last_key
            beat(progress)
            if batch.seen < request.batch_size:
                return True

    async def _delete_objects(self, keys: list[str]) -> None:
        """Delete screenshots' objects from object storage."""
        assert self.store is not None
        for key in keys:
            await self.store.delete(key)


def classify_db_error(exc: psycopg.Error) -> Exception:
    """A connection lost, a deadlock, a cancelled statement: retried (the next attempt
    resumes from the heartbeat). Anything else (a statement the database refuses) would
    fail every attempt the same way: not retried, with the database's words."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return exc
    reason = exc.diag.message_primary or str(exc) or type(exc).__name__
    return ApplicationError(
        f"retention stopped: {reason}", type="RetentionRefused", non_retryable=True
    )


def _beat(progress: RetentionProgress) -> None:
    """Heartbeat a snapshot of the progress (the SDK sends it later, throttled)."""
    activity.heartbeat(progress.model_copy(deep=True))
