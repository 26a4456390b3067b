"""What the SDK patches buy (``workers/sdk_internals``): the worker with them and without.

``python -m benchmarks.patches [--rounds 3] [--jobs 200] [--parked 300] [--replays 40]
[--idle-eviction 20] [--out patches-results.json]``

On one benchmark stack, in rounds that alternate the order (on, off; off, on; ...), since
the server slows as its file grows:

1. agent jobs approved by emailed replies, through ``orchestrator worker`` with
   ``WORKER_SDK_PATCHES`` auto (on) or off: jobs/s and CPU ms per job by process;
2. a fresh worker of the same mode, with ``WORKER_IDLE_EVICTION_SECONDS`` at
   ``--idle-eviction`` (1. runs at the default, 300 s, so no run waiting for an activity
   slot is evicted), with jobs parked at their gates: RSS idle, when the last parked, and
   after the idle time and the sweeps (off: nothing is evicted); then every job resumed
   by its reply: CPU ms per job (an evicted run replays).

In this process, in rounds that alternate the order as well:

3. replays of a finished agent job's and generation's history (what the worker does for a
   run that left its cache), with each of the stock and the compiled sandbox runner,
   without and with the shared workflow code: CPU ms per replay;
4. fresh imports of an agent job's workflow modules, as the sandbox makes for each run,
   without and with the shared code: KB each run keeps (tracemalloc).

Prints min / median / max of each figure per variant, with the machine's load average at
the start and end of each round (other work on the machine moves the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from benchmarks.bench import say, with_cpu
from benchmarks.common import stop_on_sigterm, wait_all
from benchmarks.generations import start_generations
from benchmarks.jobs import ReplyDesk, jobs_throughput, parked_memory, start_jobs
from benchmarks.stack import BenchStack, bench_stack
from workers import shared_code
from workers.sdk_internals import TEMPORALIO_VERSION, Setting, sdk_patches
from workers.worker import ALL_WORKFLOWS

MODES: tuple[Setting, ...] = ("auto", "off")
# The modules the sandbox imports afresh for each AgentJob run (the rest pass through).
JOB_MODULES = (
    "workflows.agent_job",
    "workflows.approval_gate",
    "workflows.policies",
    "workflows.search_attributes",
)
REPLAY_VARIANTS: dict[str, tuple[Setting, bool]] = {  # name: (runner's setting, shared code)
    "stock runner": ("off", False),
    "stock runner + shared code": ("off", True),
    "compiled runner": ("auto", False),
    "compiled runner + shared code (the worker's)": ("auto", True),
}
WARMUP = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.patches", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each mode")
    parser.add_argument("--jobs", type=int, default=200, help="agent jobs per round (1)")
    parser.add_argument("--parked", type=int, default=300, help="jobs parked per round (2)")
    parser.add_argument("--replays", type=int, default=40, help="replays per variant (3)")
    parser.add_argument("--imports", type=int, default=50, help="fresh module sets (4)")
    parser.add_argument(
        "--idle-eviction", type=float, default=30.0, help="WORKER_IDLE_EVICTION_SECONDS (2)"
    )
    parser.add_argument("--out", type=Path, default=Path("patches-results.json"))
    args = parser.parse_args(argv)
    if min(args.rounds, args.jobs, args.parked, args.replays, args.imports) < 1:
        parser.error("--rounds, --jobs, --parked, --replays and --imports must be at least 1")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every part, round by round; the raw figures."""
    if not sdk_patches("auto").enabled:
        raise SystemExit(f"the SDK patches are off on temporalio {TEMPORALIO_VERSION}")
    stop_on_sigterm()
    out: dict[str, Any] = {"temporalio": TEMPORALIO_VERSION, "cpus": os.cpu_count()}
    async with bench_stack() as stack:
        desk = ReplyDesk(stack)
        histories = await _histories(stack, desk)
        worker: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        replays: dict[str, list[dict[str, float]]] = {v: [] for v in REPLAY_VARIANTS}
        imports: dict[str, list[float]] = {"stock": [], "shared code": []}
        for index in range(args.rounds):
            order = MODES if index % 2 == 0 else MODES[::-1]
            for mode in order:
                say(f"round {index + 1}, WORKER_SDK_PATCHES={mode}")
                worker[mode].append(await _worker_round(stack, desk, mode, args))
            variants = list(REPLAY_VARIANTS)
            variants = variants if index % 2 == 0 else variants[::-1]
            say(f"round {index + 1}: replays and fresh imports")
            for variant in variants:
                replays[variant].append(await _replay_ms(stack, histories, variant, args.replays))
            for shared in (False, True) if index % 2 == 0 else (True, False):
                imports["shared code" if shared else "stock"].append(
                    _kept_kb_per_run(args.imports, shared=shared)
                )
        out |= {"worker": worker, "replay_cpu_ms": replays, "kb_kept_per_run": imports}
    return out


async def _histories(stack: BenchStack, desk: ReplyDesk) -> dict[str, WorkflowHistory]:
    """One finished agent job's and one generation's history (the worker with patches)."""
    stack.start_worker("ours", {"WORKER_SDK_PATCHES": "auto"})
    handles, _ = await start_jobs(stack, 1)
    for email_id, approval_id in await desk.park(1):
        await desk.reply(email_id, approval_id)
    generations = await start_generations(stack, 1)
    failed, _ = await wait_all([*handles, *generations], stack.check_workers)
    if failed:
        raise RuntimeError("the workflows whose histories are replayed failed")
    await stack.stop_worker("ours")
    return {
        "agent job": await handles[0].fetch_history(),
        "generation": await generations[0].fetch_history(),
    }


async def _worker_round(
    stack: BenchStack, desk: ReplyDesk, mode: Setting, args: argparse.Namespace
) -> dict[str, Any]:
    env: dict[str, str] = {"WORKER_SDK_PATCHES": mode}
    load = os.getloadavg()[0]
    await stack.stop_worker("ours")
    stack.start_worker("ours", env)
    handles, _ = await start_jobs(stack, WARMUP)  # imports, caches, connections
    for email_id, approval_id in await desk.park(WARMUP):
        await desk.reply(email_id, approval_id)
    await wait_all(handles, stack.check_workers)
    jobs = await with_cpu(stack, jobs_throughput(stack, desk, args.jobs), args.jobs)
    jobs.pop("job_ids")
    parked_env = env | {"WORKER_IDLE_EVICTION_SECONDS": f"{args.idle_eviction:g}"}
    parked = await parked_memory(stack, desk, args.parked, parked_env)
    return {"jobs": jobs, "parked": parked, "load_start": load, "load_end": os.getloadavg()[0]}


async def _replay_ms(
    stack: BenchStack, histories: dict[str, WorkflowHistory], variant: str, count: int
) -> dict[str, float]:
    """CPU ms of this process per replay of each history, with the variant's runner."""
    mode, shared = REPLAY_VARIANTS[variant]
    if shared:
        shared_code.install()
    else:
        shared_code.uninstall()
    try:
        replayer = Replayer(
            workflows=ALL_WORKFLOWS,
            data_converter=stack.client.data_converter,
            workflow_runner=sdk_patches(mode).workflow_runner(),
        )
        figures = {}
        for name, history in histories.items():
            await replayer.replay_workflow(history)  # the first run imports and compiles
            started = time.process_time()
            await replayer.replay_workflows(_repeated(history, count))
            figures[name] = round((time.process_time() - started) * 1000 / count, 2)
        return figures
    finally:
        shared_code.uninstall()


async def _repeated(history: WorkflowHistory, count: int) -> AsyncIterator[WorkflowHistory]:
    for _ in range(count):
        yield history


def _fresh(name: str) -> ModuleType:
    """Import ``name`` again as the sandbox does for a run: a new module object."""
    saved = sys.modules.pop(name)  # else find_spec returns the imported module's spec
    try:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.modules[name] = saved
    return module


def _kept_kb_per_run(count: int, *, shared: bool) -> float:
    """KB of Python memory each set of freshly imported job modules keeps."""
    for name in JOB_MODULES:
        importlib.import_module(name)
    if shared:
        shared_code.install()
        for name in JOB_MODULES:  # the shared code is compiled once, here
            _fresh(name)
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = [[_fresh(name) for name in JOB_MODULES] for _ in range(count)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del kept
        return round((after - before) / count / 1024, 1)
    finally:
        shared_code.uninstall()


def summary(out: dict[str, Any]) -> str:
    """min / median / max of each figure, per variant."""

    def spread(values: list[float]) -> str:
        return f"{min(values):g} / {statistics.median(values):g} / {max(values):g}"

    lines = [f"temporalio {out['temporalio']}, {out['cpus']} CPUs; min / median / max"]
    for mode, rounds in out["worker"].items():
        label = "on (auto)" if mode == "auto" else "off"
        jobs = [r["jobs"] for r in rounds]
        parked = [r["parked"] for r in rounds]
        count = parked[0]["jobs"]
        lines += [
            f"patches {label}:",
            f"  jobs/s                         {spread([j['jobs_per_s'] for j in jobs])}",
            "  worker CPU ms per job          "
            + spread([j["cpu_ms_per_workflow"]["worker_ours"] for j in jobs]),
            "  all processes CPU ms per job   "
            + spread([round(sum(j["cpu_ms_per_workflow"].values()), 1) for j in jobs]),
            f"  RSS MB idle                    {spread([p['worker_rss_idle_mb'] for p in parked])}",
            f"  RSS MB, {count} parked            "
            + spread([p["worker_rss_parked_mb"] for p in parked]),
            "  RSS KB per parked job          "
            + spread(
                [
                    round((p["worker_rss_parked_mb"] - p["worker_rss_idle_mb"]) * 1000 / count)
                    for p in parked
                ]
            ),
            f"  RSS MB after {parked[0]['idle_eviction_s']:g} s idle + sweeps  "
            + spread([p["worker_rss_settled_mb"] for p in parked]),
            "  worker CPU ms per resumed job  "
            + spread([p["resume_cpu_ms_per_job"]["worker_ours"] for p in parked]),
            f"  load average                   {spread([r['load_start'] for r in rounds])}"
            " (round start)",
        ]
    lines.append("replay CPU ms (agent job; generation):")
    for variant, rounds in out["replay_cpu_ms"].items():
        job = spread([r["agent job"] for r in rounds])
        generation = spread([r["generation"] for r in rounds])
        lines.append(f"  {variant:<46} {job}; {generation}")
    lines.append("KB kept per run by a fresh import of the job's workflow modules:")
    for variant, values in out["kb_kept_per_run"].items():
        lines.append(f"  {variant:<46} {spread(values)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    out = asyncio.run(run(args))
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(summary(out))


if __name__ == "__main__":
    main()
