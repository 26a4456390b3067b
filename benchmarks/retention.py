"""Retention on a large feed, with writers at work: rows per second and their lock waits.

``python -m benchmarks.retention [--rows 1000000] [--writers 4] [--batch 500]`` starts a
fresh embedded Postgres, fills seed 002's ``activity_log`` with ``--rows`` rows (nine in
ten past the 90 days of the default policy), then runs the retention activity's steps
(``RetentionActivities.run``, batches of ``--batch``) twice: today (archives what is due)
and as if a year had passed (deletes the archive, archives the rest). Meanwhile
``--writers`` connections each insert a new feed row and update a random old one in turn,
as the app would. It prints rows per second of each pass, and the writers' statement
times (p50, p99, max) before and during retention, with how often a writer was seen
waiting on a lock (``pg_stat_activity``). Figures, not assertions: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from activities.retention import ApplyRetentionInput, RetentionActivities, RetentionProgress
from benchmarks.common import percentile, rate
from benchmarks.stack import use_bench_runtime_dir
from db.migrate import migrate
from db.pool import Pool, open_pool
from devstack.embedded import EmbeddedPostgres

# Seed 002's feed as the seed writes it (tests/supabase/seeds/seed_002_housekeeping.sql).
FEED = """
CREATE TABLE IF NOT EXISTS public.activity_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users (id),
    entity_type VARCHAR(50),
    entity_id UUID,
    action VARCHAR(50),
    details JSONB,
    created_at TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX IF NOT EXISTS activity_created_idx ON public.activity_log (created_at);
"""
# Nine rows in ten are 91-400 days old, the rest younger than 90 days.
FILL = """
INSERT INTO public.activity_log (entity_type, entity_id, action, details, created_at)
SELECT 'request', gen_random_uuid(), 'updated', jsonb_build_object('n', g),
       now() - CASE WHEN g %% 10 = 0 THEN interval '1 day' * (g %% 89)
                    ELSE interval '91 days' + interval '1 minute' * (g %% 446400) END
FROM generate_series(1, %(rows)s) AS g
"""
SAMPLE = (
    "SELECT id FROM public.activity_log WHERE created_at < now() - interval '91 days' LIMIT 20000"
)
INSERT = "INSERT INTO public.activity_log (entity_type, action) VALUES ('request', 'created')"
UPDATE = "UPDATE public.activity_log SET details = '{\"edited\": true}' WHERE id = %s"
WAITING = (
    "SELECT count(*) AS n FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND application_name = 'bench-writer'"
)


class Writers:
    """Connections writing the feed as the app would, timing every statement."""

    def __init__(self, url: str, count: int, old_ids: list[uuid.UUID]) -> None:
        self.url, self.count, self.old_ids = url, count, old_ids
        self.times: list[float] = []
        self.lock_samples = self.lock_waits = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Writers:
        self._tasks = [asyncio.create_task(self._write(i)) for i in range(self.count)]
        self._tasks.append(asyncio.create_task(self._watch()))
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def take(self) -> list[float]:
        """The statement times so far (seconds), and start afresh."""
        taken, self.times = self.times, []
        return taken

    async def _write(self, seed: int) -> None:
        pick = random.Random(seed)
        pool = await open_pool(self.url, min_size=1, max_size=1)
        try:
            async with pool.connection() as conn:
                await conn.execute("SET application_name = 'bench-writer'")
                while not self._stop.is_set():
                    for query, params in ((INSERT, None), (UPDATE, (pick.choice(self.old_ids),))):
                        started = time.perf_counter()
                        await conn.execute(query, params)
                        self.times.append(time.perf_counter() - started)
                    await asyncio.sleep(0.005)
        finally:
            await pool.close()

    async def _watch(self) -> None:
        pool = await open_pool(self.url, min_size=1, max_size=1)
        try:
            while not self._stop.is_set():
                async with pool.connection() as conn:
                    row = await (await conn.execute(WAITING)).fetchone()
                self.lock_samples += 1
                self.lock_waits += int(row["n"]) if row else 0
                await asyncio.sleep(0.05)
        finally:
            await pool.close()


def _times(label: str, times: list[float]) -> str:
    if not times:
        return f"{label}: no statements"
    ms = [t * 1e3 for t in times]
    return (
        f"{label}: {len(ms)} statements, p50 {percentile(ms, 50):.2f} ms, "
        f"p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms"
    )


async def _pass(pool: Pool, as_of: datetime, batch: int) -> tuple[int, int, float]:
    """One retention run over every step: rows archived, rows deleted, seconds."""
    started = time.perf_counter()
    result = await RetentionActivities(pool).run(
        ApplyRetentionInput(as_of=as_of, batch_size=batch), RetentionProgress(), lambda _: None
    )
    seconds = time.perf_counter() - started
    feed = next(t for t in result.targets if t.entity_type == "activity_log")
    return feed.archived, feed.purged, seconds


async def measure(url: str, rows: int, writers: int, batch: int) -> list[str]:
    """Fill, then run retention twice with writers at work; the lines to print."""
    lines = []
    async with await open_pool(url, min_size=1, max_size=4) as pool:
        async with pool.connection() as conn:
            await conn.execute(FEED)
            started = time.perf_counter()
            await conn.execute(FILL, {"rows": rows})
            await conn.execute("ANALYZE public.activity_log")
            lines.append(f"filled {rows:,} rows in {time.perf_counter() - started:.1f} s")
            old_ids = [r["id"] for r in await (await conn.execute(SAMPLE)).fetchall()]
        async with Writers(url, writers, old_ids) as app:
            await asyncio.sleep(3)
            lines.append(_times(f"writers ({writers}) before retention", app.take()))
            samples, waits = app.lock_samples, app.lock_waits
            now = datetime.now(UTC)
            for label, as_of in (("today", now), ("a year later", now + timedelta(days=366))):
                archived, purged, seconds = await _pass(pool, as_of, batch)
                moved = archived + purged
                lines.append(
                    f"retention {label}: {archived:,} archived, {purged:,} deleted in "
                    f"{seconds:.1f} s: {rate(moved, seconds):,.0f} rows/s (batches of {batch})"
                )
                lines.append(_times(f"writers during retention {label}", app.take()))
            seen = app.lock_waits - waits
            lines.append(
                f"writers seen waiting on a lock: {seen} in "
                f"{(app.lock_samples - samples) * writers} samples"
            )
    return lines


async def run(rows: int, writers: int, batch: int) -> list[str]:
    """``measure`` on a fresh embedded Postgres."""
    use_bench_runtime_dir()
    with tempfile.TemporaryDirectory(prefix="orchestrator-retention-") as home:
        postgres = EmbeddedPostgres(Path(home) / "postgres")
        url = await postgres.start()
        try:
            await migrate(url)
            return await measure(url, rows, writers, batch)
        finally:
            await postgres.stop()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    args: Any = parser.parse_args()
    if args.rows < 1 or args.writers < 0 or not 1 <= args.batch <= 10_000:
        parser.error("--rows >= 1, --writers >= 0, --batch 1..10000")
    for line in asyncio.run(run(args.rows, args.writers, args.batch)):
        print(line)


if __name__ == "__main__":
    main()
