"""Retention as seed 002's retention_policies say: rows past their active days are archived,
archived rows past their archive days deleted, in small batches; nothing that belongs to a
job, gate or generation still open is touched; a run that dies resumes from its last
heartbeat without moving a row twice; each policy's last_archived_at / last_purged_at is
stamped when its step finishes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection, errors
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.retention import (
    ApplyRetentionInput,
    RetentionActivities,
    RetentionProgress,
    classify_db_error,
)
from db.pool import Pool
from tests.db.factories import insert_user
from tests.harness import running_stack
from tests.history_recording import record_history
from tests.housekeeping import seed_002_table
from workflows.models.housekeeping import RetentionInput
from workflows.retention import Retention

DUE, KEPT = 23, 4  # feed rows past their 90 days, and young ones


async def _seed_002_feed(conn: AsyncConnection[Any]) -> None:
    """Seed 002's feed, as the seed writes it (the app's table); its notification queue is
    ours (migration 0029 adopts or creates it)."""
    await conn.execute(seed_002_table("activity_log"))  # type: ignore[arg-type]


async def _feed_rows(conn: AsyncConnection[Any], user: uuid.UUID) -> None:
    now = datetime.now(UTC)
    for i in range(DUE):
        await conn.execute(
            "INSERT INTO activity_log (user_id, entity_type, action, details, created_at) "
            "VALUES (%s, 'request', 'created', %s, %s)",
            (user, f'{{"n": {i}}}', now - timedelta(days=91, minutes=i)),
        )
    for i in range(KEPT):
        await conn.execute(
            "INSERT INTO activity_log (user_id, action, created_at) VALUES (%s, 'young', %s)",
            (user, now - timedelta(days=10, minutes=i)),
        )
    # Already archived: 3 past their 365 days, 2 not.
    for days in (400, 380, 366, 100, 5):
        await conn.execute(
            "INSERT INTO archived_activity_log (id, action, created_at, archived_at) "
            "VALUES (gen_random_uuid(), 'old', %s, %s)",
            (now - timedelta(days=days + 90), now - timedelta(days=days)),
        )
    # The queue: sent or given up 40 days ago go (30 days); one still to be sent stays.
    for processed, attempts in ((True, 1), (True, 1), (False, 5), (False, 1)):
        await conn.execute(
            "INSERT INTO notification_queue (is_processed, attempts, max_attempts, created_at) "
            "VALUES (%s, %s, 5, %s)",
            (processed, attempts, now - timedelta(days=40)),
        )
    # One of ours (migration 0029's columns): archived with what it was and how it ended.
    await conn.execute(
        "INSERT INTO notification_queue (is_processed, attempts, created_at, event_type, "
        "event_key, user_id, outcome, external_id, sent_at) "
        "VALUES (true, 1, %s, 'job.failed', 'job.failed/x', %s, 'sent', 'ts-1', %s)",
        (now - timedelta(days=40), user, now - timedelta(days=40)),
    )


async def _job(conn: AsyncConnection[Any], user: uuid.UUID, *statuses: str) -> uuid.UUID:
    """A job moved through ``statuses`` (the state machine logs each move)."""
    row = await (
        await conn.execute(
            "INSERT INTO jobs (user_id, title) VALUES (%s, 'retention') RETURNING id", (user,)
        )
    ).fetchone()
    assert row is not None
    for status in statuses:
        completed = "now()" if status in ("completed", "failed", "cancelled") else "NULL"
        await conn.execute(
            f"UPDATE jobs SET status = %s, completed_at = {completed} WHERE id = %s",
            (status, row["id"]),
        )
    return row["id"]  # type: ignore[no-any-return]


async def _old_transition(conn: AsyncConnection[Any], job: uuid.UUID, days: int) -> None:
    await conn.execute(
        "INSERT INTO status_transitions (entity, entity_id, from_status, to_status, at) "
        "VALUES ('jobs', %s, 'pending', 'running', %s)",
        (job, datetime.now(UTC) - timedelta(days=days)),
    )


async def _count(conn: AsyncConnection[Any], query: str, *params: Any) -> int:
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


async def test_retention_archives_and_deletes_in_batches_and_leaves_open_work_alone(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        async with stack.pool.connection() as conn:
            await _seed_002_feed(conn)
            user = await insert_user(conn)
            await _feed_rows(conn, user)
            done = await _job(conn, user, "running", "completed")
            open_job = await _job(conn, user, "running")
            for job in (done, open_job):
                await _old_transition(conn, job, 100)
            now = datetime.now(UTC)
            approval = uuid.uuid4()
            await conn.execute(
                "INSERT INTO approvals (id, job_id, description, status) "
                "VALUES (%s, %s, 'publish', 'pending')",
                (approval, open_job),
            )
            for n, subject in enumerate([None, None, str(approval), "not-a-uuid"]):
                await conn.execute(
                    "INSERT INTO webhook_events (provider, event_id, received_at, subject_id) "
                    "VALUES ('resend', %s, %s, %s)",
                    (f"evt-{n}", now - timedelta(days=45), subject),
                )
            before = await (
                await conn.execute("SELECT entity_type, last_archived_at FROM retention_policies")
            ).fetchall()
            assert all(r["last_archived_at"] is None for r in before)

        handle = await stack.client.start_workflow(
            Retention.run,
            RetentionInput(batch_size=5),
            id=f"retention-test-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        result = await handle.result()
        await record_history(handle, "retention")
        by_kind = {t.entity_type: t for t in result.targets}
        assert (by_kind["activity_log"].archived, by_kind["activity_log"].purged) == (DUE, 3)
        assert by_kind["notification_queue"].archived == 4  # sent, or out of attempts
        assert by_kind["webhook_events"].purged == 3  # not the pending gate's
        assert by_kind["blobs"].skipped is None

        async with stack.pool.connection() as conn:
            assert await _count(conn, "SELECT count(*) FROM activity_log") == KEPT
            assert await _count(conn, "SELECT count(*) FROM archived_activity_log") == DUE + 2
            assert (
                await _count(
                    conn, "SELECT count(*) FROM archived_activity_log WHERE details->>'n' = '0'"
                )
                == 1
            )  # moved with its contents, once
            assert await _count(conn, "SELECT count(*) FROM notification_queue") == 1
            assert await _count(conn, "SELECT count(*) FROM archived_notification_queue") == 4
            ours = await (
                await conn.execute(
                    "SELECT event_type, event_key, user_id, outcome, external_id "
                    "FROM archived_notification_queue WHERE event_type IS NOT NULL"
                )
            ).fetchall()
            assert ours == [
                {
                    "event_type": "job.failed",
                    "event_key": "job.failed/x",
                    "user_id": user,
                    "outcome": "sent",
                    "external_id": "ts-1",
                }
            ]
            # The open job's log is where its workflow reads it; the finished one's archived.
            old = "at < now() - interval '99 days'"
            assert (
                await _count(
                    conn,
                    f"SELECT count(*) FROM status_transitions WHERE entity_id = %s AND {old}",
                    open_job,
                )
                == 1
            )
            assert (
                await _count(
                    conn, "SELECT count(*) FROM status_transitions WHERE entity_id = %s", done
                )
                == 3
            )  # its recent moves (created, running, completed) stay until 90 days old
            assert (
                await _count(
                    conn,
                    "SELECT count(*) FROM archived_status_transitions WHERE entity_id = %s",
                    done,
                )
                == 1
            )
            left = await (await conn.execute("SELECT subject_id FROM webhook_events")).fetchall()
            assert [r["subject_id"] for r in left] == [str(approval)]
            stamps = {
                r["entity_type"]: r
                for r in await (
                    await conn.execute(
                        "SELECT entity_type, last_archived_at, last_purged_at "
                        "FROM retention_policies"
                    )
                ).fetchall()
            }
        for kind in ("activity_log", "notification_queue", "status_transitions"):
            assert stamps[kind]["last_archived_at"] is not None, kind
            assert stamps[kind]["last_purged_at"] is not None, kind
        assert stamps["webhook_events"]["last_purged_at"] is not None

        # A second run finds nothing more to do.
        again = await stack.client.execute_workflow(
            Retention.run,
            RetentionInput(batch_size=5),
            id=f"retention-again-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert all(t.archived == t.purged == 0 for t in again.targets)


class _Crash(Exception):
    """The worker died after a heartbeat."""


async def test_a_run_that_dies_resumes_from_its_last_heartbeat_moving_nothing_twice(
    pool: Pool,
) -> None:
    async with pool.connection() as conn:
        await _seed_002_feed(conn)
        await _feed_rows(conn, await insert_user(conn))
    activities = RetentionActivities(pool)
    request = ApplyRetentionInput(as_of=datetime.now(UTC), batch_size=4)
    beats: list[Any] = []

    def crash_after_three(*details: Any) -> None:
        beats.append(details[0])
        if len(beats) == 3:
            raise _Crash  # mid-step: the feed has 23 rows, 4 a batch

    env = ActivityEnvironment()
    env.on_heartbeat = crash_after_three
    with pytest.raises(_Crash):
        await env.run(activities.apply_retention, request)
    last = RetentionProgress.model_validate(beats[-1])
    assert last.step_index == 0 and last.after_ts is not None
    assert last.targets["activity_log"].archived == 12
    async with pool.connection() as conn:
        assert await _count(conn, "SELECT count(*) FROM archived_activity_log") == 12 + 5

    # The retry gets the last heartbeat's details and goes on from its cursor.
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, heartbeat_details=[beats[-1]], attempt=2)
    done = await retry.run(activities.apply_retention, request)
    feed = next(t for t in done.targets if t.entity_type == "activity_log")
    assert (feed.archived, feed.purged, done.resumed) == (DUE, 3, 1)
    async with pool.connection() as conn:
        assert await _count(conn, "SELECT count(*) FROM activity_log") == KEPT
        assert await _count(conn, "SELECT count(*) FROM archived_activity_log") == DUE + 2


async def test_max_batches_stops_a_run_and_the_next_one_goes_on(pool: Pool) -> None:
    async with pool.connection() as conn:
        await _seed_002_feed(conn)
        await _feed_rows(conn, await insert_user(conn))
    activities = RetentionActivities(pool)
    first = await ActivityEnvironment().run(
        activities.apply_retention,
        ApplyRetentionInput(as_of=datetime.now(UTC), batch_size=10, max_batches=2),
    )
    feed = next(t for t in first.targets if t.entity_type == "activity_log")
    assert first.more and feed.archived == 20
    async with pool.connection() as conn:
        stamp = await (
            await conn.execute(
                "SELECT last_archived_at FROM retention_policies WHERE entity_type = 'activity_log'"
            )
        ).fetchone()
        assert stamp is not None and stamp["last_archived_at"] is None  # not finished
    second = await ActivityEnvironment().run(
        activities.apply_retention,
        ApplyRetentionInput(as_of=datetime.now(UTC), batch_size=10),
    )
    feed = next(t for t in second.targets if t.entity_type == "activity_log")
    assert not second.more and feed.archived == DUE - 20


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (errors.AdminShutdown("terminating connection"), True),
        (errors.DeadlockDetected("deadlock detected"), True),
        (errors.QueryCanceled("canceling statement"), True),
        (errors.SyntaxError("syntax error at or near"), False),
        (errors.InsufficientPrivilege("status_transitions is append-only"), False),
        (errors.UndefinedTable("relation does not exist"), False),
    ],
)
def test_a_statement_the_database_refuses_is_not_retried_forever(
    error: Exception, retried: bool
) -> None:
    failure = classify_db_error(error)  # type: ignore[arg-type]
    assert (failure is error) == retried
    if not retried:
        assert isinstance(failure, ApplicationError) and failure.non_retryable


async def test_screenshots_go_with_jobs_finished_long_ago_and_stay_with_open_ones(
    pool: Pool,
) -> None:
    old = datetime.now(UTC) - timedelta(days=120)
    async with pool.connection() as conn:
        user = await insert_user(conn)
        finished = await _job(conn, user, "running", "completed")
        recent = await _job(conn, user, "running", "completed")
        running = await _job(conn, user, "running")
        await conn.execute(
            "UPDATE jobs SET completed_at = %s WHERE id = %s", (old + timedelta(days=1), finished)
        )
        blobs = {}
        for name, job in (("finished", finished), ("recent", recent), ("running", running)):
            blob = await (
                await conn.execute(
                    "INSERT INTO blobs (content_type, data, created_at) "
                    "VALUES ('image/png', '\\x89504e47', %s) RETURNING id",
                    (old,),
                )
            ).fetchone()
            assert blob is not None
            blobs[name] = blob["id"]
            await conn.execute(
                "INSERT INTO job_steps (job_id, step_index, action, screenshot_ref) "
                "VALUES (%s, 0, '{}', %s)",
                (job, f"blob:{blob['id']}"),
            )
        orphan = await (
            await conn.execute(
                "INSERT INTO blobs (content_type, data, created_at) "
                "VALUES ('image/png', '\\x00', %s) RETURNING id",
                (old,),
            )
        ).fetchone()
        assert orphan is not None
    done = await ActivityEnvironment().run(
        RetentionActivities(pool).apply_retention,
        ApplyRetentionInput(as_of=datetime.now(UTC), batch_size=2),
    )
    assert next(t for t in done.targets if t.entity_type == "blobs").purged == 1
    async with pool.connection() as conn:
        left = {r["id"] for r in await (await conn.execute("SELECT id FROM blobs")).fetchall()}
    # The finished job's screenshot goes; one of a job finished lately, of a running job,
    # or that no job names yet (a step about to record it) stays.
    assert left == {blobs["recent"], blobs["running"], orphan["id"]}
