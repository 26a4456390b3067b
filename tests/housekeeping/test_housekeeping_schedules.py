"""`orchestrator schedules reconcile` keeps one Temporal Schedule per housekeeping process,
from the tables: a token refresh per renewing Meta connection and Threads account, the
deployment's daily retention run while retention_policies has rows, a refresh per active
dashboard_refreshes row whose materialized view exists. Each carries a summary and a note
for the Temporal UI; a second reconcile changes nothing; a row that goes takes its
schedule with it; an operator's pause of the retention run is kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from activities.housekeeping_schedules import (
    dashboard_schedule_id,
    retention_schedule_id,
    token_schedule_id,
)
from activities.metric_schedules import schedule_id
from tests.harness import Stack, running_stack
from tests.housekeeping import (
    add_owner,
    add_renewing_connection,
    add_threads_account,
    operator_env,
    run_cli,
)
from tests.metrics import deleting_schedules


async def _summary(stack: Stack, schedule: str) -> str:
    action = (await stack.client.get_schedule_handle(schedule).describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.static_summary is not None  # an encrypted payload, as it is stored
    [summary] = await stack.client.data_converter.decode([action.static_summary], [str])
    return str(summary)


async def _exists(stack: Stack, schedule: str) -> bool:
    ids = [s.id async for s in await stack.client.list_schedules()]
    return schedule in ids


async def test_reconcile_creates_each_housekeeping_schedule_from_the_tables_and_removes_them(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    view = f"dash_{uuid.uuid4().hex[:10]}"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        owner = await add_owner(stack)
        renewing = await add_renewing_connection(
            stack,
            secret={"access_token": "EAAB-x"},
            expires_at=datetime.now(UTC) + timedelta(days=50),
            owner=owner,
        )
        system_user = await add_renewing_connection(  # never expires: no refresh schedule
            stack, account_id="7654321", secret={"access_token": "EAAB-y"}, expires_at=None
        )
        account = await add_threads_account(
            stack, owner, "THAA-z", datetime.now(UTC) + timedelta(days=40)
        )
        async with stack.pool.connection() as conn:
            await conn.execute(f"CREATE MATERIALIZED VIEW public.{view} AS SELECT 1 AS id")
            await conn.execute(
                "INSERT INTO dashboard_refreshes (view_name, every_minutes) VALUES (%s, 5)",
                (view,),
            )
        refresh = token_schedule_id("connection", renewing.id)
        threads = token_schedule_id("threads", account.id)
        retention, dashboard = retention_schedule_id(task_queue), dashboard_schedule_id(view)
        ours = [refresh, threads, retention, dashboard]
        syncs = [schedule_id(renewing.id), schedule_id(system_user.id)]
        async with deleting_schedules(stack.client, *ours, *syncs):
            operator_env(stack, monkeypatch)
            made = await run_cli(capsys, "schedules", "reconcile")
            housekeeping = made["housekeeping"]
            assert sorted(housekeeping["created"]) == sorted(ours)
            # Seed 002's three views do not exist here: named, not scheduled.
            assert any("request_stats_by_type" in n for n in housekeeping["notes"])
            assert token_schedule_id("connection", system_user.id) not in housekeeping["created"]
            summaries = {s: await _summary(stack, s) for s in ours}
            assert summaries == {
                refresh: f"Token refresh · {renewing.label}",
                threads: f"Token refresh · {account.label}",
                retention: "Retention: archive and delete old rows",
                dashboard: f"Dashboard refresh · {view}",
            }
            described = await stack.client.get_schedule_handle(dashboard).describe()
            assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=5)]
            assert "dashboard_refreshes" in (described.schedule.state.note or "")

            again = await run_cli(capsys, "schedules", "reconcile")
            assert again["housekeeping"]["created"] == again["housekeeping"]["updated"] == []
            assert again["housekeeping"]["unchanged"] == len(ours)

            # The operator pauses the retention run: a reconcile keeps it paused.
            await stack.client.get_schedule_handle(retention).pause(note="audit in progress")
            # The rows go (or stop asking): their schedules go with them.
            async with stack.pool.connection() as conn:
                await conn.execute("DELETE FROM threads_accounts WHERE id = %s", (account.id,))
                await conn.execute(
                    "UPDATE dashboard_refreshes SET is_active = false WHERE view_name = %s",
                    (view,),
                )
                await conn.execute(
                    "UPDATE platform_connections SET token_expires_at = NULL WHERE id = %s",
                    (renewing.id,),
                )
            after = (await run_cli(capsys, "schedules", "reconcile"))["housekeeping"]
            assert sorted(after["deleted"]) == sorted([threads, dashboard, refresh])
            assert after["unpaused"] == []
            paused = (await stack.client.get_schedule_handle(retention).describe()).schedule
            assert paused.state.paused

            async with stack.pool.connection() as conn:
                await conn.execute("DELETE FROM retention_policies")
            last = (await run_cli(capsys, "schedules", "reconcile"))["housekeeping"]
            assert last["deleted"] == [retention]
            for name in ours:
                assert not await _exists(stack, name), name
