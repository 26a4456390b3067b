"""Dashboard refresh without pg_cron: a configured materialized view is refreshed
CONCURRENTLY when it has a unique index (plainly otherwise, and the result says so), the
duration is recorded on its row, a refresh that finds another one of the same view running
is a skip, and the schedule skips a run while the previous one is still going."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.housekeeping_schedules import dashboard_schedule_id, reconcile_housekeeping
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.metrics import deleting_schedules
from tests.waiting import eventually
from workflows.dashboard_refresh import DashboardRefresh
from workflows.models.housekeeping import DashboardRefreshInput, DashboardRefreshResult


async def _refresh(stack: Stack, view: str, record: str | None = None) -> DashboardRefreshResult:
    handle = await stack.client.start_workflow(
        DashboardRefresh.run,
        DashboardRefreshInput(view_name=view),
        id=f"dashboard-refresh-test-{uuid.uuid4()}",
        task_queue=stack.settings.temporal_task_queue,
    )
    result = await handle.result()
    if record:
        await record_history(handle, record)
    return result


async def _view(stack: Stack, *, unique: bool, slow: float = 0) -> str:
    """A materialized view over the metrics (seed 002's rollup, in small), configured."""
    name = f"rollup_{uuid.uuid4().hex[:10]}"
    sleep = f", pg_sleep({slow}) IS NOT NULL AS slept" if slow else ""
    async with stack.pool.connection() as conn:
        await conn.execute(
            f"CREATE MATERIALIZED VIEW public.{name} AS "
            f"SELECT g AS id, g * 2 AS total{sleep} FROM generate_series(1, 50) AS g"
        )
        if unique:
            await conn.execute(f"CREATE UNIQUE INDEX ON public.{name} (id)")
        await conn.execute(
            "INSERT INTO dashboard_refreshes (view_name, every_minutes) VALUES (%s, 1)", (name,)
        )
    return name


async def test_a_view_with_a_unique_index_is_refreshed_concurrently_and_its_duration_kept(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        concurrent, plain = await _view(stack, unique=True), await _view(stack, unique=False)
        done = await _refresh(stack, concurrent, record="dashboard_refresh")
        assert (done.skipped, done.concurrently, done.note) == (False, True, None)
        row = await stack.fetchrow(
            "SELECT last_refreshed_at, last_duration_ms, last_concurrently, last_error "
            "FROM dashboard_refreshes WHERE view_name = %s",
            concurrent,
        )
        assert row is not None and row["last_refreshed_at"] is not None
        assert row["last_duration_ms"] == done.duration_ms and row["last_concurrently"]
        assert row["last_error"] is None

        blocking = await _refresh(stack, plain)
        assert not blocking.skipped and not blocking.concurrently
        assert "unique index" in (blocking.note or "")

        # A name that is no materialized view fails at once with what to do.
        with pytest.raises(WorkflowFailureError) as failed:
            await _refresh(stack, "no_such_view")
        assert "no materialized view no_such_view" in str(failed.value.cause.__cause__)


async def test_a_refresh_already_running_makes_the_next_one_a_skip(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        view = await _view(stack, unique=True)
        # Another refresh of the view (by hand, or a second worker) holds its lock.
        async with stack.pool.connection() as other, other.transaction():
            await other.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('dashboard-refresh:' || %s, 0))",
                (f"public.{view}",),
            )
            skipped = await _refresh(stack, view, record="dashboard_refresh_skipped")
        assert skipped.skipped and "another refresh" in (skipped.note or "")
        row = await stack.fetchrow(
            "SELECT last_refreshed_at FROM dashboard_refreshes WHERE view_name = %s", view
        )
        assert row == {"last_refreshed_at": None}  # a skip records nothing
        assert not (await _refresh(stack, view)).skipped  # once the other is done


async def test_the_schedule_skips_a_run_while_the_previous_one_is_still_going(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        view = await _view(stack, unique=True, slow=0.2)  # 50 rows x 0.2 s: 10 s a refresh
        schedule = dashboard_schedule_id(view)
        async with deleting_schedules(stack.client, schedule):
            await reconcile_housekeeping(stack.client, stack.pool, task_queue)
            handle = stack.client.get_schedule_handle(schedule)
            await handle.trigger()

            async def running() -> bool:
                return bool((await handle.describe()).info.running_actions)

            await eventually(running, what="the first refresh running")
            await handle.trigger()  # while it runs: skipped, not queued

            async def skipped() -> int:
                return (await handle.describe()).info.num_actions_skipped_overlap

            assert await eventually(skipped, what="the overlapping run skipped") == 1
            assert len((await handle.describe()).info.running_actions) == 1
