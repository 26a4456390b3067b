"""CPU and time per database call on the activities' path, on a fresh embedded Postgres.

``python -m benchmarks.db_calls [--jobs 2000]`` runs, per job, what an agent job's
activities do to its row: four transitions (running, waiting for approval, running,
completed) and one plain UPDATE, each in its own pool checkout as an activity makes it,
four jobs at a time. It prints this process's CPU, Postgres's CPU and the wall time per
job. Run it in two checkouts to compare their database code; the README's performance
section has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import insert_users
from benchmarks.stack import postgres_cpu, use_bench_runtime_dir
from db import jobs
from db.migrate import migrate
from db.pool import Pool, open_pool
from db.transitions import TransitionContext
from devstack.embedded import EmbeddedPostgres

CTX = TransitionContext(reason="db_calls benchmark", workflow_id="wf", run_id="run")
CONCURRENCY = 4


async def seed(pool: Pool, count: int) -> list[uuid.UUID]:
    """``count`` pending jobs, each for a user of its own."""
    users = [uuid.uuid4() for _ in range(count)]
    ids = [uuid.uuid4() for _ in range(count)]
    async with pool.connection() as conn, conn.transaction():
        async with conn.cursor() as cur:
            await insert_users(cur, users, who="db-calls")
        for user_id, job_id in zip(users, ids, strict=True):
            await jobs.insert_job(
                conn,
                job_id=job_id,
                user_id=user_id,
                workspace_id=None,
                workflow_id=f"job-{job_id}",
                title="t",
                instruction="i",
            )
    return ids


async def one_job(pool: Pool, job_id: uuid.UUID) -> None:
    """The job's row through its life, one pool checkout per call as in the activities."""
    async with pool.connection() as conn:
        await jobs.mark_job_running(conn, job_id, CTX)
    async with pool.connection() as conn:
        await conn.execute("UPDATE public.jobs SET title = 'step done' WHERE id = %s", (job_id,))
    async with pool.connection() as conn:
        await jobs.mark_job_waiting_approval(conn, job_id, CTX)
    async with pool.connection() as conn:
        await jobs.mark_job_running(conn, job_id, CTX)
    async with pool.connection() as conn:
        await jobs.mark_job_completed(conn, job_id, CTX, result={"steps": 2})


async def check_logged(pool: Pool, ids: list[uuid.UUID]) -> None:
    """Every job completed, its four transitions logged with their reason: the figures
    are of calls that did their work."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM public.jobs WHERE id = ANY(%(ids)s) "
                "AND status = 'completed') AS completed, (SELECT count(*) FROM "
                "public.status_transitions WHERE entity_id = ANY(%(ids)s) "
                "AND reason = %(reason)s) AS logged",
                {"ids": ids, "reason": CTX.reason},
            )
        ).fetchone()
    if row != {"completed": len(ids), "logged": 4 * len(ids)}:
        raise RuntimeError(f"expected {len(ids)} completed jobs, 4 transitions each: {row}")


async def run(count: int) -> dict[str, float]:
    """Figures per job, in milliseconds."""
    use_bench_runtime_dir()
    with tempfile.TemporaryDirectory(prefix="orchestrator-db-calls-") as home:
        postgres_dir = Path(home) / "postgres"
        postgres = EmbeddedPostgres(postgres_dir)
        url = await postgres.start()
        try:
            await migrate(url)
            async with await open_pool(url, min_size=CONCURRENCY, max_size=CONCURRENCY) as pool:
                ids = await seed(pool, count)
                cpu, pg = time.process_time(), _postgres_cpu(postgres_dir)
                wall = time.perf_counter()
                for start in range(0, count, CONCURRENCY):
                    batch = ids[start : start + CONCURRENCY]
                    await asyncio.gather(*(one_job(pool, job_id) for job_id in batch))
                cpu = time.process_time() - cpu
                pg = _postgres_cpu(postgres_dir) - pg
                wall = time.perf_counter() - wall
                await check_logged(pool, ids)
        finally:
            await postgres.stop()
    return {
        "client_cpu_ms": cpu / count * 1e3,
        "postgres_cpu_ms": pg / count * 1e3,
        "wall_ms": wall / count * 1e3,
    }


def _postgres_cpu(postgres_dir: Path) -> float:
    used = postgres_cpu(postgres_dir)
    if used is None:
        raise RuntimeError(f"no Postgres server on {postgres_dir}")
    return used


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    figures = asyncio.run(run(args.jobs))
    print(
        f"per job (4 transitions and 1 update, {args.jobs} jobs): "
        f"client CPU {figures['client_cpu_ms']:.3f} ms, "
        f"Postgres CPU {figures['postgres_cpu_ms']:.3f} ms, "
        f"wall {figures['wall_ms']:.3f} ms"
    )


if __name__ == "__main__":
    main()
