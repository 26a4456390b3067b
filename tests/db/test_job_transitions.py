"""Job transition functions: idempotent on retry, refused when out of order, logged once."""

from __future__ import annotations

import uuid

import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from db import jobs
from db.transitions import InvalidTransition, TransitionContext
from tests.db.factories import insert_user

CTX = TransitionContext(reason="test", workflow_id="job-x", run_id="run-1")


async def _log(pool: AsyncConnectionPool, job_id: uuid.UUID) -> list[tuple[str | None, str]]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT from_status, to_status FROM status_transitions "
                "WHERE entity = 'jobs' AND entity_id = %s ORDER BY id",
                (job_id,),
            )
        ).fetchall()
    return [(r["from_status"], r["to_status"]) for r in rows]


async def _new_job(pool: AsyncConnectionPool) -> uuid.UUID:
    job_id = uuid.uuid4()
    async with pool.connection() as conn:
        user_id = await insert_user(conn)
        await jobs.insert_job(
            conn,
            job_id=job_id,
            user_id=user_id,
            workspace_id=None,
            workflow_id=f"job-{job_id}",
            title="t",
            instruction="i",
        )
        # A retried insert finds the row it created.
        again = await jobs.insert_job(
            conn,
            job_id=job_id,
            user_id=user_id,
            workspace_id=None,
            workflow_id=f"job-{job_id}",
            title="t",
            instruction="i",
        )
        assert again.status == "pending"
    return job_id


async def test_retried_transitions_write_nothing_twice(pool: AsyncConnectionPool) -> None:
    job_id = await _new_job(pool)
    for _ in range(2):  # the second round is a retry after a commit
        async with pool.connection() as conn:
            row = await jobs.mark_job_running(conn, job_id, CTX)
        assert row.status == "running" and row.started_at is not None
    first_start = row.started_at
    for _ in range(2):
        async with pool.connection() as conn:
            await jobs.mark_job_waiting_approval(conn, job_id, CTX)
    async with pool.connection() as conn:
        row = await jobs.mark_job_running(conn, job_id, CTX)
        assert row.started_at == first_start
    for _ in range(2):
        async with pool.connection() as conn:
            done = await jobs.mark_job_completed(conn, job_id, CTX, result={"steps": 2})
    assert done.status == "completed" and done.result == {"steps": 2}
    assert await _log(pool, job_id) == [
        (None, "pending"),
        ("pending", "running"),
        ("running", "waiting_approval"),
        ("waiting_approval", "running"),
        ("running", "completed"),
    ]


async def test_transition_log_records_reason_and_workflow(pool: AsyncConnectionPool) -> None:
    job_id = await _new_job(pool)
    async with pool.connection() as conn:
        await jobs.mark_job_running(conn, job_id, CTX)
        row = await (
            await conn.execute(
                "SELECT reason, workflow_id, run_id FROM status_transitions "
                "WHERE entity_id = %s AND to_status = 'running'",
                (job_id,),
            )
        ).fetchone()
    assert row == {"reason": "test", "workflow_id": "job-x", "run_id": "run-1"}


async def test_each_transition_is_logged_with_its_own_context(pool: AsyncConnectionPool) -> None:
    """On the pool's autocommit connections a transition commits by itself and leaves no
    tag behind; in one transaction, each transition is logged with its own reason."""
    job_id = await _new_job(pool)
    async with pool.connection() as conn:
        await jobs.mark_job_running(conn, job_id, CTX)
        assert conn.info.transaction_status == TransactionStatus.IDLE  # committed
        left = await (
            await conn.execute("SELECT current_setting('orchestrator.reason', true) AS r")
        ).fetchone()
        assert left is not None and not left["r"]
    async with pool.connection() as conn, conn.transaction():
        await jobs.mark_job_waiting_approval(conn, job_id, CTX.model_copy(update={"reason": "a"}))
        await jobs.mark_job_running(conn, job_id, CTX.model_copy(update={"reason": "b"}))
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT to_status, reason FROM status_transitions WHERE entity_id = %s ORDER BY id",
                (job_id,),
            )
        ).fetchall()
    assert [(r["to_status"], r["reason"]) for r in rows] == [
        ("pending", None),
        ("running", "test"),
        ("waiting_approval", "a"),
        ("running", "b"),
    ]


async def test_out_of_order_transition_is_refused(pool: AsyncConnectionPool) -> None:
    job_id = await _new_job(pool)
    async with pool.connection() as conn:
        with pytest.raises(InvalidTransition, match="is 'pending'; cannot move to 'completed'"):
            await jobs.mark_job_completed(conn, job_id, CTX, result={})
    async with pool.connection() as conn:
        await jobs.mark_job_cancelled(conn, job_id, CTX, reason="operator")
    async with pool.connection() as conn:
        with pytest.raises(InvalidTransition, match="is 'cancelled'"):
            await jobs.mark_job_running(conn, job_id, CTX)
    assert await _log(pool, job_id) == [(None, "pending"), ("pending", "cancelled")]
