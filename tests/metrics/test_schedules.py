"""Metric-sync schedules on the Temporal dev server: reconcile, overlap, the reconcile
workflow on its own schedule, and the CLI."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.housekeeping_schedules import retention_schedule_id
from activities.metric_schedules import (
    METRIC_SYNC_WORKFLOW,
    RECONCILE_WORKFLOW,
    ensure_reconcile_schedule,
    reconcile_schedules,
    trigger_sync,
)
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.metrics import (
    SINCE,
    UNTIL,
    add_connection,
    connection_schedule,
    deleting_schedules,
    stored_values,
)
from tests.waiting import eventually
from workflows.metric_sync import MetricSync, ScheduleReconcile


@pytest.mark.parametrize(
    ("run", "name"),
    [(MetricSync.run, METRIC_SYNC_WORKFLOW), (ScheduleReconcile.run, RECONCILE_WORKFLOW)],
)
def test_schedules_name_the_workflows_they_start_as_registered(run: Any, name: str) -> None:
    """The schedules name the workflows instead of importing them (they import the
    schedules' activity): the names are the ones the workflows register."""
    assert ScheduleActionStartWorkflow(run, id="x", task_queue="q").workflow == name


async def _gone(stack: Stack, schedule: str) -> bool:
    """Reconcile again, then whether the schedule no longer exists."""
    await reconcile_schedules(stack.client, stack.pool, stack.settings.temporal_task_queue)
    try:
        await stack.client.get_schedule_handle(schedule).describe()
    except RPCError as exc:
        return exc.status == RPCStatusCode.NOT_FOUND
    return False


async def test_reconcile_creates_updates_pauses_and_deletes_schedules(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        meta = await add_connection(stack, account_id="111", frequency=30)
        google = await add_connection(stack, platform="google_ads", account_id="222")
        ids = [connection_schedule(meta), connection_schedule(google)]
        async with deleting_schedules(stack.client, *ids):
            created = await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert sorted(created.created) == sorted([str(meta.id), str(google.id)])
            again = await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert (again.created, again.updated, again.unchanged) == ([], [], 2)

            handle = stack.client.get_schedule_handle(ids[0])
            described = await handle.describe()
            schedule = described.schedule
            assert [i.every for i in schedule.spec.intervals] == [timedelta(minutes=30)]
            assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            assert schedule.policy.catchup_window == timedelta(minutes=30)
            assert schedule.state.note and "meta account 111" in schedule.state.note
            action = schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert (action.workflow, action.id, action.task_queue) == (
                "MetricSync",
                ids[0],
                task_queue,
            )
            assert action.static_summary is not None  # an encrypted payload, as it is stored
            [summary] = await stack.client.data_converter.decode([action.static_summary], [str])
            assert summary == "Metric sync · meta account 111 (Test account)"
            assert not schedule.state.paused

            await stack.fetchrow(
                "UPDATE platform_connections SET sync_frequency = 15 WHERE id = %s RETURNING id",
                meta.id,
            )
            changed = await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert (changed.updated, changed.unchanged) == ([str(meta.id)], 1)

            # The server applies schedule changes as signals to its scheduler: describe
            # can lag them by a moment under load.
            async def interval_is_15() -> bool:
                intervals = (await handle.describe()).schedule.spec.intervals
                return [i.every for i in intervals] == [timedelta(minutes=15)]

            await eventually(interval_is_15, what="the 15-minute interval")

            await stack.fetchrow(
                "UPDATE platform_connections SET is_active = false WHERE id = %s RETURNING id",
                meta.id,
            )
            paused = await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert paused.paused == [str(meta.id)]

            async def is_paused() -> bool:
                state = (await handle.describe()).schedule.state
                return state.paused and (state.note or "").startswith("Paused:")

            await eventually(is_paused, what="the schedule paused with its reason")
            assert (await reconcile_schedules(stack.client, stack.pool, task_queue)).unchanged == 2

            await stack.fetchrow(
                "UPDATE platform_connections SET is_active = true WHERE id = %s RETURNING id",
                meta.id,
            )
            resumed = await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert resumed.unpaused == [str(meta.id)]

            async def is_running() -> bool:
                return not (await handle.describe()).schedule.state.paused

            await eventually(is_running, what="the schedule unpaused")

            await stack.fetchrow(
                "DELETE FROM platform_connections WHERE id = %s RETURNING id", google.id
            )
            await eventually(lambda: _gone(stack, ids[1]), what="the orphan schedule deleted")
            await handle.describe()  # the other connection's schedule stays


async def test_overlapping_triggers_are_skipped_while_a_sync_runs(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        meta.configure_account("333", campaigns=3)
        # Each request takes a while, so the first sync surely outlives the next triggers
        # even on a loaded machine; the triggers are then skipped, not queued.
        meta.faults.latency_s = 5.0
        connection = await add_connection(stack, account_id="333")
        schedule_id = connection_schedule(connection)
        async with deleting_schedules(stack.client, schedule_id):
            await reconcile_schedules(stack.client, stack.pool, task_queue)
            handle = stack.client.get_schedule_handle(schedule_id)
            await trigger_sync(stack.client, connection.id)
            await eventually(
                lambda: _running(handle), what="the first triggered sync to be running"
            )
            # One trigger at a time: the server's scheduler keeps one pending patch, so two
            # triggers reaching it in the same workflow task count as one.
            await trigger_sync(stack.client, connection.id)
            await eventually(lambda: _skipped(handle, 1), what="an overlap skipped", timeout=60)
            await trigger_sync(stack.client, connection.id)
            info = await eventually(
                lambda: _skipped(handle, 2), what="two overlaps skipped", timeout=60
            )
            meta.faults.latency_s = 0
            assert len(info.running_actions) == 1
            first = info.running_actions[0].workflow_id
            await stack.client.get_workflow_handle(first).result()
            info = (await handle.describe()).info
            assert info.num_actions == 1
            assert [a.action.workflow_id for a in info.recent_actions] == [first]  # type: ignore[attr-defined]


async def _running(handle: Any) -> bool:
    return bool((await handle.describe()).info.running_actions)


async def _skipped(handle: Any, count: int) -> Any:
    info = (await handle.describe()).info
    return info if info.num_actions_skipped_overlap >= count else None


async def test_the_reconcile_workflow_runs_on_its_own_schedule(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    reconcile_id = f"metric-sync-reconcile-test-{uuid.uuid4().hex[:8]}"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        connection = await add_connection(stack, account_id="444", frequency=45)
        retention = retention_schedule_id(task_queue)  # the reconcile keeps housekeeping too
        async with deleting_schedules(
            stack.client, reconcile_id, connection_schedule(connection), retention
        ):
            assert (
                await ensure_reconcile_schedule(stack.client, task_queue, schedule=reconcile_id)
                == "created"
            )
            assert (
                await ensure_reconcile_schedule(stack.client, task_queue, schedule=reconcile_id)
                == "unchanged"
            )
            handle = stack.client.get_schedule_handle(reconcile_id)
            description = await handle.describe()
            assert [i.every for i in description.schedule.spec.intervals] == [timedelta(minutes=10)]
            await handle.trigger()

            async def finished() -> str | None:
                actions = (await handle.describe()).info.recent_actions
                return actions[-1].action.workflow_id if actions else None  # type: ignore[attr-defined]

            workflow_id = await eventually(finished, what="the reconcile run")
            run = stack.client.get_workflow_handle_for(ScheduleReconcile.run, workflow_id)
            result = await run.result()
            await record_history(run, "schedule_reconcile")

            assert result.created == [str(connection.id)]
            schedule = (
                await stack.client.get_schedule_handle(connection_schedule(connection)).describe()
            ).schedule
            assert [i.every for i in schedule.spec.intervals] == [timedelta(minutes=45)]
            assert (await stack.client.get_schedule_handle(retention).describe()).schedule


def _parser() -> argparse.ArgumentParser:
    """The root parser as workers.cli builds it, with only the metric-sync commands."""
    from workers.cli.syncs import add_commands

    parser = argparse.ArgumentParser(prog="orchestrator")
    parser.add_argument("--json", action="store_true")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    args = _parser().parse_args(["--json", *argv])
    await args.run(args)
    return json.loads(capsys.readouterr().out)


async def test_cli_adds_a_connection_reconciles_triggers_and_backfills(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workers.cli.common import CliError

    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.meta.configure_account("555", campaigns=2)
        key = stack.settings.encryption_master_key
        assert key is not None and stack.settings.database_url is not None
        env = {
            "DATABASE_URL": stack.settings.database_url.get_secret_value(),
            "TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "ENCRYPTION_MASTER_KEY": key.get_secret_value(),
            "ORCHESTRATOR_HOME": "/nonexistent-orchestrator-home",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        added = await _run(
            capsys,
            "connections", "add", "--platform", "meta", "--account-id", "555",
            "--token", "EAAB-cli-token", "--frequency", "20",
        )  # fmt: skip
        connection_id = added["connection_id"]
        async with deleting_schedules(stack.client, added["schedule"]) as schedules:
            assert added["change"] == "created"
            stored = await stack.fetchrow(
                "SELECT credentials::text AS c FROM platform_connections WHERE id = %s",
                uuid.UUID(connection_id),
            )
            assert stored is not None and "ciphertext" in stored["c"]
            assert "EAAB-cli-token" not in stored["c"]

            reconciled = await _run(capsys, "schedules", "reconcile")
            schedules.append("metric-sync-reconcile")
            assert reconciled["unchanged"] == 1
            assert (await _run(capsys, "syncs", "trigger", connection_id))["triggered"]

            done = await _run(
                capsys, "syncs", "backfill", connection_id,
                "--since", str(SINCE), "--until", str(UNTIL), "--wait",
            )  # fmt: skip
            assert (done["status"], done["created"]) == ("success", 2 * 10 * 4)
            assert len(await stored_values(stack, uuid.UUID(connection_id))) >= 2 * 10 * 4

            with pytest.raises(CliError, match="is before --since"):
                await _run(
                    capsys, "syncs", "backfill", connection_id, "--since", "2025-03-02",
                    "--until", "2025-03-01",
                )  # fmt: skip
            with pytest.raises(CliError, match="has no schedule"):
                await _run(capsys, "syncs", "trigger", str(uuid.uuid4()))
            listed = await _run(capsys, "syncs", "list", "--connection", connection_id)
            assert {r["status"] for r in listed} <= {"success", "running"}


async def test_demo_connection_is_seeded_once_and_its_first_sync_runs(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    from devstack.demo_metrics import DEMO_CONNECTION_ID, seed_demo_connection

    schedules = (f"metric-sync-{DEMO_CONNECTION_ID}", "metric-sync-reconcile")
    async with (
        running_stack(db_url, temporal_env.client, task_queue) as stack,
        deleting_schedules(stack.client, *schedules),
    ):
        first = await seed_demo_connection(stack.pool, stack.client, stack.settings)
        again = await seed_demo_connection(stack.pool, stack.client, stack.settings)
        assert first == again == f"metric-sync-{DEMO_CONNECTION_ID}"
        rows = await stack.fetchall("SELECT sync_frequency FROM platform_connections")
        assert [r["sync_frequency"] for r in rows] == [5]
        log = await eventually(
            lambda: stack.fetchrow("SELECT status FROM metric_sync_logs WHERE status <> 'running'"),
            what="the demo's first sync",
        )
        assert log["status"] == "success"
        assert len(await stored_values(stack, DEMO_CONNECTION_ID)) > 0


@pytest.mark.parametrize(
    ("value", "stored"),
    [("999-888-7777", "9998887777"), ("9998887777", "9998887777")],
)
def test_cli_takes_a_login_customer_id_with_or_without_dashes(value: str, stored: str) -> None:
    args = _parser().parse_args(
        ["connections", "add", "--platform", "google_ads", "--account-id", "1", "--token", "t",
         "--login-customer-id", value]
    )  # fmt: skip
    assert args.login_customer_id == stored


@pytest.mark.parametrize("value", ["999888777", "99988877771", "abc-def-ghij", "", "9998887777 "])
def test_cli_refuses_a_login_customer_id_that_is_not_ten_digits(value: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(
            ["connections", "add", "--platform", "google_ads", "--account-id", "1",
             "--token", "t", "--login-customer-id", value]
        )  # fmt: skip


async def test_cli_refuses_a_login_customer_id_on_a_meta_connection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workers.cli.common import CliError

    with pytest.raises(CliError, match="Google Ads connections only"):
        await _run(
            capsys, "connections", "add", "--platform", "meta", "--account-id", "1",
            "--token", "t", "--login-customer-id", "9998887777",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "login", "accepted"),
    [
        ("google_ads", "9998887777", True),
        ("google_ads", None, True),
        ("google_ads", "999-888-7777", False),  # stored as digits only
        ("google_ads", "12345", False),
        ("meta", "9998887777", False),  # a Meta connection has no manager id
    ],
)
async def test_the_table_keeps_only_a_ten_digit_manager_id_on_google_connections(
    db_url: str, platform: str, login: str | None, accepted: bool
) -> None:
    from psycopg import errors

    from db import metrics
    from db.pool import open_pool

    pool = await open_pool(db_url, min_size=1, max_size=1)
    try:
        async with pool.connection() as conn:
            insert = metrics.insert_connection(
                conn,
                connection_id=uuid.uuid4(),
                platform=platform,  # type: ignore[arg-type]
                credentials={},
                account_id="1234567890",
                account_name=None,
                sync_frequency=60,
                created_by=None,
                login_customer_id=login,
            )
            if accepted:
                row = await insert
                assert row.login_customer_id == login
            else:
                with pytest.raises((errors.CheckViolation, errors.StringDataRightTruncation)):
                    await insert
    finally:
        await pool.close()
