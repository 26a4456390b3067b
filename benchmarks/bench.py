"""Benchmark the orchestrator on its own embedded stack and compare with bare Temporal.

``python -m benchmarks.bench [--jobs 500] [--generations 200] [--metric-rows 100000]
[--parked 2000] [--out bench-results.json] [--quick]``: prints a table and writes the
same figures to a JSON file. See the README's performance section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks.bare import BARE_TASK_QUEUE, BareJob, BarePlan, plan_from_tokens
from benchmarks.common import ratio, stop_on_sigterm, wait_all
from benchmarks.generations import (
    generations_throughput,
    start_generations,
    transitions_per_generation,
)
from benchmarks.history import history_counts
from benchmarks.jobs import (
    ReplyDesk,
    bare_throughput,
    jobs_throughput,
    parked_memory,
    reply_latency,
    send_release,
    start_jobs,
    transitions_per_job,
)
from benchmarks.metric_writes import metric_upserts
from benchmarks.stack import BenchStack, bench_stack
from benchmarks.worker import RUNNER_ENV
from devstack.embedded import DEV_SERVER_DYNAMIC_CONFIG, DEV_SERVER_SQLITE_PRAGMAS
from workers.settings import Settings

QUICK = {"jobs": 5, "generations": 5, "metric_rows": 1000, "parked": 20}
QUICK_IDLE_EVICTION = "2"
REPLY_RATE = 10.0  # replies per second while latency is measured
WARMUP = 3  # workflows of each kind run before anything is timed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=500, help="agent jobs (scenarios 1 and 3)")
    parser.add_argument("--generations", type=int, default=200, help="generations (2 and 3)")
    parser.add_argument("--metric-rows", type=int, default=100_000, help="metric rows (4)")
    parser.add_argument("--parked", type=int, default=2000, help="jobs parked at gates (5)")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--worker-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting for both workers, e.g. worker_sticky_cache_size=2000",
    )
    args = parser.parse_args(argv)
    args.worker_settings = {}
    for item in args.worker_setting:
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if not name.startswith("worker_") or name not in Settings.model_fields:
            parser.error(f"--worker-setting {item!r}: not a worker setting")
        args.worker_settings[name] = value.strip()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
        # Idle eviction within seconds, so the smoke run goes through it too.
        args.worker_settings.setdefault("worker_idle_eviction_seconds", QUICK_IDLE_EVICTION)
    return args


async def warm_up(stack: BenchStack, desk: ReplyDesk) -> dict[str, Any]:
    """Run a few workflows of each kind; read the plans of the baseline from their histories."""
    handles, _ = await start_jobs(stack, WARMUP)
    for email_id, approval_id in await desk.park(WARMUP):
        await desk.reply(email_id, approval_id)
    failed, _ = await wait_all(handles, stack.check_workers)
    job_tokens, job_counts = await history_counts(handles[0])
    generations = await start_generations(stack, WARMUP)
    failed += (await wait_all(generations, stack.check_workers))[0]
    generation_tokens, generation_counts = await history_counts(generations[0])
    if failed:
        raise RuntimeError(f"{failed} warm-up workflows failed; see the worker log")
    plans = {"job": plan_from_tokens(job_tokens), "generation": plan_from_tokens(generation_tokens)}
    for tag, plan in plans.items():
        await bare_throughput(stack, plan, WARMUP, f"warmup-{tag}")
    return {
        "job_counts": job_counts,
        "generation_counts": generation_counts,
        "job_tokens": "".join(job_tokens),
        "generation_tokens": "".join(generation_tokens),
        "plans": plans,
    }


async def bare_counts(stack: BenchStack, plan: BarePlan) -> dict[str, int]:
    """Round trips of one bare workflow of ``plan`` (to show the baseline matches ours)."""
    handle = await stack.client.start_workflow(
        BareJob.run, plan, id=f"bare-count-{time.time_ns()}", task_queue=BARE_TASK_QUEUE
    )
    workflow_id = await stack.bare_waiting.get()
    assert workflow_id == handle.id
    await send_release(stack, workflow_id, plan, [0])
    await handle.result()
    return (await history_counts(handle))[1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario, in order; the figures as one dict."""
    stop_on_sigterm()
    async with bench_stack(keep=args.keep, worker_settings=args.worker_settings) as stack:
        stack.start_worker("ours")
        stack.start_worker("bare")
        desk = ReplyDesk(stack)
        say("warm-up and baseline plans")
        warm = await warm_up(stack, desk)
        plans: dict[str, BarePlan] = warm["plans"]
        out: dict[str, Any] = {"config": _config(args, stack)}
        say(f"1. {args.jobs} agent jobs, each approved by an emailed reply")
        jobs = await with_cpu(stack, jobs_throughput(stack, desk, args.jobs), args.jobs)
        job_ids = jobs.pop("job_ids")
        say(f"3. {args.jobs} bare workflows of the same shape")
        bare_jobs = await with_cpu(
            stack, bare_throughput(stack, plans["job"], args.jobs, "job"), args.jobs
        )
        say(f"3. {args.jobs} bare workflows of the same shape, with our sandbox runner")
        bare_jobs_runner = await with_cpu(
            stack, bare_with_our_runner(stack, plans["job"], args.jobs, "job-runner"), args.jobs
        )
        say(f"1. reply-to-resume latency: {args.jobs} parked jobs, {REPLY_RATE:g} replies/s")
        latency = await with_cpu(
            stack, reply_latency(stack, desk, args.jobs, REPLY_RATE), args.jobs
        )
        say(f"2. {args.generations} generations completing by webhook")
        generations = await with_cpu(
            stack, generations_throughput(stack, args.generations), args.generations
        )
        generation_ids = generations.pop("generation_ids")
        say(f"3. {args.generations} bare workflows of the same shape")
        bare_generations = await with_cpu(
            stack,
            bare_throughput(stack, plans["generation"], args.generations, "generation"),
            args.generations,
        )
        say(f"3. {args.generations} bare workflows of the same shape, with our sandbox runner")
        bare_generations_runner = await with_cpu(
            stack,
            bare_with_our_runner(stack, plans["generation"], args.generations, "generation-runner"),
            args.generations,
        )
        say(f"4. {args.metric_rows} metric rows: upsert vs COPY")
        upserts = await metric_upserts(stack, args.metric_rows)
        say(f"5. {args.parked} jobs parked at approval gates (fresh worker)")
        parked = await parked_memory(stack, desk, args.parked)
        say("6. transitions and round trips per workflow")
        out |= {
            "agent_jobs": jobs,
            "agent_jobs_bare": bare_jobs,
            "agent_jobs_ratio": ratio(jobs["jobs_per_s"], bare_jobs["per_s"]),
            "agent_jobs_bare_our_runner": bare_jobs_runner,
            "agent_jobs_ratio_our_runner": ratio(jobs["jobs_per_s"], bare_jobs_runner["per_s"]),
            "reply_to_resume": latency,
            "generations": generations,
            "generations_bare": bare_generations,
            "generations_ratio": ratio(generations["per_s"], bare_generations["per_s"]),
            "generations_bare_our_runner": bare_generations_runner,
            "generations_ratio_our_runner": ratio(
                generations["per_s"], bare_generations_runner["per_s"]
            ),
            "metric_upserts": upserts,
            "parked": parked,
            "per_job": {
                "transitions": await transitions_per_job(stack, job_ids),
                "round_trips": warm["job_counts"],
                "bare_round_trips": await bare_counts(stack, plans["job"]),
                "history_tokens": warm["job_tokens"],
            },
            "per_generation": {
                "transitions": await transitions_per_generation(stack, generation_ids),
                "round_trips": warm["generation_counts"],
                "bare_round_trips": await bare_counts(stack, plans["generation"]),
                "history_tokens": warm["generation_tokens"],
            },
            "bare_plans": {k: p.model_dump(mode="json") for k, p in plans.items()},
        }
        out["worker_exit_codes"] = {k: await stack.stop_worker(k) for k in list(stack.workers)}
    out["targets"] = targets(out)
    return out


async def bare_with_our_runner(
    stack: BenchStack, plan: BarePlan, count: int, tag: str
) -> dict[str, Any]:
    """The bare baseline again, its worker running our sandbox runner instead of the SDK's
    (ours runs it): what the runner alone is worth, apart from our own work."""
    await stack.stop_worker("bare")
    stack.start_worker("bare", {RUNNER_ENV: "ours"})
    try:
        return await bare_throughput(stack, plan, count, tag)
    finally:
        await stack.stop_worker("bare")
        stack.start_worker("bare")


async def with_cpu(
    stack: BenchStack, scenario: Awaitable[dict[str, Any]], count: int
) -> dict[str, Any]:
    """The scenario's figures plus the CPU milliseconds each process spent per workflow."""
    before = stack.cpu_seconds()
    out = await scenario
    after = stack.cpu_seconds()
    out["cpu_ms_per_workflow"] = {
        name: round((used - before.get(name, 0.0)) * 1000 / count, 1)
        for name, used in after.items()
        if count
    }
    return out


def _cpu_row(figures: dict[str, Any]) -> str:
    cpu = figures.get("cpu_ms_per_workflow", {})
    return ", ".join(f"{name} {ms:g}" for name, ms in cpu.items() if ms >= 0.5)


def _config(args: argparse.Namespace, stack: BenchStack) -> dict[str, Any]:
    s = stack.settings
    return {
        "jobs": args.jobs,
        "generations": args.generations,
        "metric_rows": args.metric_rows,
        "parked": args.parked,
        "reply_rate_per_s": REPLY_RATE,
        "worker": {k: v for k, v in s.model_dump().items() if k.startswith("worker_")}
        | {"process": "subprocess: orchestrator worker (bare: python -m benchmarks.worker)"},
        "temporal_dev_server": {
            "store": "SQLite file",
            "dynamic_config": DEV_SERVER_DYNAMIC_CONFIG,
            "sqlite_pragmas": DEV_SERVER_SQLITE_PRAGMAS,
        },
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
    }


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and PASS/MISS."""
    checks = [
        ("agent jobs ours/bare (stock SDK)", out["agent_jobs_ratio"], ">=", 0.9),
        ("generations ours/bare (stock SDK)", out["generations_ratio"], ">=", 0.9),
        ("reply-to-resume p50 (ms)", out["reply_to_resume"]["p50_ms"], "<=", 100),
        ("reply-to-resume p99 (ms)", out["reply_to_resume"]["p99_ms"], "<=", 500),
        ("metric upserts / COPY (Meta page)", out["metric_upserts"]["ratio_meta"], ">=", 0.5),
        (
            "metric upserts / COPY (Google Ads page)",
            out["metric_upserts"]["ratio_google_ads"],
            ">=",
            0.5,
        ),
        ("worker RSS, parked jobs (MB)", _parked_rss(out["parked"]), "<=", 200),
    ]
    return [
        {
            "target": name,
            "value": value,
            "goal": f"{op} {goal}",
            "pass": value >= goal if op == ">=" else value <= goal,
        }
        for name, value, op, goal in checks
    ]


def _parked_rss(parked: dict[str, Any]) -> float:
    # Jobs wait at gates for hours: the worker's RSS once it has evicted the idle runs, or
    # when the last one parked if idle eviction is off.
    settled = parked["worker_rss_settled_mb"]
    return float(parked["worker_rss_parked_mb"] if settled is None else settled)


def table(out: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    j, jb, lat = out["agent_jobs"], out["agent_jobs_bare"], out["reply_to_resume"]
    g, gb, m, p = out["generations"], out["generations_bare"], out["metric_upserts"], out["parked"]
    jbr, gbr = out["agent_jobs_bare_our_runner"], out["generations_bare_our_runner"]
    rows = [
        ("1. agent jobs/s", f"{j['jobs_per_s']} ({j['jobs']} in {j['seconds']} s)"),
        ("3. bare jobs/s", f"{jb['per_s']} ({jb['workflows']} in {jb['seconds']} s)"),
        ("1/3. jobs ours/bare", out["agent_jobs_ratio"]),
        (
            "3. bare jobs/s, our sandbox runner",
            f"{jbr['per_s']} (ours/bare {out['agent_jobs_ratio_our_runner']})",
        ),
        ("1. CPU ms per job", _cpu_row(j)),
        ("3. CPU ms per bare job", _cpu_row(jb)),
        ("1. reply-to-resume p50 ms", lat["p50_ms"]),
        ("1. reply-to-resume p99 ms", lat["p99_ms"]),
        (
            "1. webhook answered p50/p99 ms",
            f"{lat['webhook_answer_p50_ms']} / {lat['webhook_answer_p99_ms']}",
        ),
        ("2. generations/s", f"{g['per_s']} ({g['generations']} in {g['seconds']} s)"),
        ("3. bare generations/s", f"{gb['per_s']} ({gb['workflows']} in {gb['seconds']} s)"),
        ("2/3. generations ours/bare", out["generations_ratio"]),
        (
            "3. bare generations/s, our sandbox runner",
            f"{gbr['per_s']} (ours/bare {out['generations_ratio_our_runner']})",
        ),
        ("2. CPU ms per generation", _cpu_row(g)),
        ("3. CPU ms per bare generation", _cpu_row(gb)),
        (f"4. upsert rows/s, Meta page ({m['meta_page_values']})", m["upsert_meta_rows_per_s"]),
        (
            f"4. upsert rows/s, Google Ads page ({m['google_ads_page_values']})",
            m["upsert_google_ads_rows_per_s"],
        ),
        ("4. COPY rows/s", m["copy_rows_per_s"]),
        ("4. upsert/COPY Meta, Google Ads", f"{m['ratio_meta']}, {m['ratio_google_ads']}"),
        (f"5. worker RSS, {p['jobs']} parked (MB)", p["worker_rss_parked_mb"]),
        (
            f"5. worker RSS, idle runs evicted after {p['idle_eviction_s']} s (MB)",
            p["worker_rss_settled_mb"],
        ),
        (
            "5. worker RSS idle / peak (MB)",
            f"{p['worker_rss_idle_mb']} / {p['worker_rss_peak_mb']}",
        ),
        ("5. park / resume all (s)", f"{p['park_seconds']} / {p['resume_seconds']}"),
    ]
    for kind in ("per_job", "per_generation"):
        data = out[kind]
        rt, brt = data["round_trips"], data["bare_round_trips"]
        rows.append((f"6. {kind} transitions", data["transitions"]["total"]))
        rows.append(
            (
                f"6. {kind} acts / LAs / timers / WFTs",
                f"{rt['activities']} / {rt['local_activities']} / {rt['timers']} / "
                f"{rt['workflow_tasks']} (bare: {brt['activities']} / "
                f"{brt['local_activities']} / {brt['timers']} / {brt['workflow_tasks']})",
            )
        )
    width = max(len(str(name)) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    for t in out["targets"]:
        verdict = "PASS" if t["pass"] else "MISS"
        lines.append(f"{verdict}  {t['target']}: {t['value']} (target {t['goal']})")
    return "\n".join(lines)


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    out = asyncio.run(run(args))
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(table(out))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
