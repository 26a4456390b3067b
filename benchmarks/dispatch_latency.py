"""Pick-up latency: from a row the app inserts to its workflow started.

``python -m benchmarks.dispatch_latency [--rows 300] [--rate 20] [--setups alone,worker]
[--out FILE]`` starts its own stack per setup (benchmarks/stack.py: fresh Postgres and
Temporal), inserts ``--rows`` pending generations as the signed-in user (role
``authenticated`` with JWT claims, as PostgREST does) at ``--rate`` rows per second, and
measures for each the time from the insert's commit to the start time Temporal recorded
for ``generation-<id>`` (one clock: the same machine). Target: p99 under one second.

The setups (``SETUPS``) separate the dispatcher's latency from the machine's capacity:

- ``alone``: ``orchestrator dispatcher`` in its own process and no worker polling the
  task queues, so the generations it starts wait in Temporal and none runs: the
  dispatcher's own latency (notification, row lock, start RPC, commit) on this machine.
  The target is judged on this one.
- ``worker``: the default deployment, the dispatcher inside ``orchestrator worker``,
  which also runs every generation to completion on the same cores: above what the
  machine completes (about 10 generations a second on two cores) this measures the
  machine's capacity, the starts queued behind the generations' work.
- ``own-process``: ``orchestrator dispatcher`` beside a worker started with
  ``DISPATCHER_ENABLED=false`` that runs the generations, on the same cores.

Each setup also measures the sweep: rows inserted while no dispatcher listens, picked up
when it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from psycopg.types.json import Jsonb
from temporalio.service import RPCError

from activities.higgsfield import key_context
from benchmarks.common import insert_users, percentile
from benchmarks.stack import BenchStack, bench_stack
from db.app_api import as_user
from db.generations import Q as GENERATIONS
from workers.keys import credential_box

TARGET_P99_MS = 1000.0
LISTENING = (
    "SELECT count(*) AS n FROM pg_stat_activity "
    "WHERE query ILIKE 'LISTEN %%orchestrator_dispatch%%'"
)


SETUPS = ("alone", "worker", "own-process")
DESCRIBED = {
    "alone": "dispatcher alone (own process, no generation runs)",
    "worker": "dispatcher in the worker, generations running",
    "own-process": "dispatcher in its own process, generations running",
}


def parse_setups(value: str) -> list[str]:
    """``alone,worker``: known setups, in the order given."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SETUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"setups are some of {', '.join(SETUPS)}")
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300, help="rows inserted (default 300)")
    parser.add_argument("--rate", type=float, default=20.0, help="rows per second (default 20)")
    parser.add_argument(
        "--setups",
        type=parse_setups,
        default=["alone", "worker"],
        help=f"comma-separated, some of {', '.join(SETUPS)} (default alone,worker)",
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each setup on a stack of its own: ``{setup: {"notify": ..., "sweep_at_start": ...}}``."""
    return {setup: await run_setup(setup, args.rows, args.rate) for setup in args.setups}


async def run_setup(setup: str, rows: int, rate: float) -> dict[str, Any]:
    """One setup (``SETUPS``): the pick-up while listening, then the sweep at its start."""
    async with bench_stack(worker_settings={"dispatch_sweep_seconds": 3600}) as stack:
        user = await _user(stack)
        if setup == "own-process":
            stack.start_worker("ours", {"DISPATCHER_ENABLED": "false"})
        dispatcher: Literal["ours", "dispatcher"] = "ours" if setup == "worker" else "dispatcher"
        stack.start_worker(dispatcher)
        await _until_listening(stack)
        listened = await _inserted_while_listening(stack, user, rows, rate)
        await stack.stop_worker(dispatcher)
        swept = await _inserted_while_down(stack, user, max(rows // 10, 5), dispatcher)
        await stack.stop_workers()
    return {"notify": listened, "sweep_at_start": swept}


async def _user(stack: BenchStack) -> uuid.UUID:
    user = uuid.uuid4()
    box = credential_box(stack.settings)
    async with stack.pool.connection() as conn:
        await insert_users(conn.cursor(), [user], who="dispatch", tier="enterprise")
        await conn.execute(
            GENERATIONS["upsert_user_api_key"],
            {
                "user_id": user,
                "service": "higgsfield",
                "encrypted_api_key": box.encrypt("bench:key", key_context(user, "higgsfield")),
            },
        )
    return user


async def _until_listening(stack: BenchStack, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stack.check_workers()
        rows = await stack.fetchall(LISTENING, {})
        if rows and int(rows[0]["n"]) > 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the worker's dispatcher never listened")
        await asyncio.sleep(0.2)


async def _insert(stack: BenchStack, user: uuid.UUID, n: int) -> tuple[uuid.UUID, float]:
    """Insert one pending generation as the user; its id and the wall time of the commit."""
    generation_id = uuid.uuid4()
    claims = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    async with as_user(stack.pool, claims) as conn:
        await conn.execute(
            "INSERT INTO public.generations (id, user_id, prompt_text, settings) "
            "VALUES (%s, %s, %s, %s)",
            (generation_id, user, f"benchmark {n}", Jsonb({})),
        )
    return generation_id, time.time()


async def _latencies(
    stack: BenchStack, inserted: list[tuple[uuid.UUID, float]], timeout: float = 300.0
) -> list[float]:
    """Milliseconds from each commit to its workflow's start time in Temporal."""
    deadline = time.monotonic() + timeout
    found: list[float] = []
    for generation_id, committed in inserted:
        handle = stack.client.get_workflow_handle(f"generation-{generation_id}")
        while True:
            try:
                started = (await handle.describe()).start_time
                break
            except RPCError:  # not started yet
                stack.check_workers()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"generation-{generation_id} never started") from None
                await asyncio.sleep(0.05)
        found.append((started.timestamp() - committed) * 1000)
    return found


def _figures(latencies: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "rows": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        **extra,
    }


async def _inserted_while_listening(
    stack: BenchStack, user: uuid.UUID, rows: int, rate: float
) -> dict[str, Any]:
    inserted: list[tuple[uuid.UUID, float]] = []
    began = time.monotonic()
    for n in range(rows):
        await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
        inserted.append(await _insert(stack, user, n))
    latencies = await _latencies(stack, inserted)
    figures = _figures(latencies, rate_per_s=rate)
    figures["target_p99_ms"] = TARGET_P99_MS
    figures["met"] = figures["p99_ms"] < TARGET_P99_MS
    return figures


async def _inserted_while_down(
    stack: BenchStack, user: uuid.UUID, rows: int, dispatcher: Literal["ours", "dispatcher"]
) -> dict[str, Any]:
    """Rows inserted with no dispatcher running, then the dispatcher (its worker, or its
    own process) started: its first sweep starts them (measured from the process's start,
    not the inserts)."""
    inserted = [(await _insert(stack, user, n))[0] for n in range(rows)]
    started = time.time()
    stack.start_worker(dispatcher)
    await _until_listening(stack)
    latencies = await _latencies(stack, [(generation_id, started) for generation_id in inserted])
    return _figures(latencies or [0.0], measured_from="dispatcher start")


def table(out: dict[str, Any]) -> str:
    lines = ["| pick-up | rows | p50 | p99 | max | target |", "|---|---|---|---|---|---|"]
    for setup, figures in out.items():
        notify, sweep = figures["notify"], figures["sweep_at_start"]
        verdict = "PASS" if notify["met"] else "MISS"
        target = f"p99 < {TARGET_P99_MS:.0f} ms: {verdict}" if setup == "alone" else ""
        lines += [
            f"| insert → workflow started (NOTIFY), {notify['rate_per_s']:g} rows/s, "
            f"{DESCRIBED[setup]} | {notify['rows']} | {notify['p50_ms']} ms "
            f"| {notify['p99_ms']} ms | {notify['max_ms']} ms | {target} |",
            f"| rows inserted while no dispatcher ran, from its start (sweep), {setup} "
            f"| {sweep['rows']} | {sweep['p50_ms']} ms | {sweep['p99_ms']} ms "
            f"| {sweep['max_ms']} ms | |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = asyncio.run(run(args))
    print(table(out))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
