"""What users pay for and hit at scale: Temporal Cloud actions per unit of work, and how
the costs grow with the work.

``python -m benchmarks.scale [--full] [--scenario NAME ...] [--sizes 1000,2000] [--runs 3]
[--out FILE]``: every scenario (or those named) at small sizes, one run per size (a smoke
pass of a few minutes); with ``--full`` at the sizes the targets name, three runs per
size (hours on two cores: 10,000 parked jobs).

Scenarios, each measured per size:

- ``actions``: billable actions per agent job (5 steps, 1 approval), generation, metric
  sync and approval reminder, from the real runs' histories, beside the naive design;
  the dev server's own ``action`` counter beside them;
- ``parked``: jobs parked at approval gates: worker RSS parked and once the idle runs
  left the cache, and the time to resume every one;
- ``reconcile``: ``schedules reconcile`` over N connections: seconds and server calls per
  connection (first when every schedule is created, then when nothing changed);
- ``metric-writes``: N metric rows through the sync's write path vs ``COPY``;
- ``listing``: one user's approvals, jobs and generations among N rows each, and one
  organization's as a member reads them (a typical one and one holding 1 %), as the app
  reads them (row-level security): plans and p99;
- ``dispatch``: insert-to-workflow-started latency of the row dispatcher at N rows/s,
  twice: the dispatcher alone (its own process, no generation runs: its own latency, the
  target) and the default deployment (the dispatcher in the worker, every generation
  running to completion on the same cores: the machine's capacity), each on its stack.

Every figure is taken ``--runs`` times (min / median / max) with the 1-minute load
average beside each run; with several sizes, the growth per unit between the smallest
and the largest size. docs/performance.md holds the figures and their history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from benchmarks import dispatch_latency
from benchmarks.actions import (
    Breakdown,
    count_actions,
    naive_agent_job,
    naive_generation,
    naive_metric_sync,
    naive_reminder,
)
from benchmarks.common import insert_users, percentile, start_all, stop_on_sigterm, wait_all
from benchmarks.generations import start_generations
from benchmarks.jobs import ReplyDesk, parked_memory
from benchmarks.metric_writes import metric_upserts_interleaved, wal_created_mb, warm_wal
from benchmarks.stack import BenchStack, bench_stack
from workers.starters import start_agent_job
from workflows.models.agent_job import AgentJobInput
from workflows.models.approval import ApprovalPolicy
from workflows.models.steps import Step

# Sizes per scenario: the default run (a few minutes), and --full (the targets' sizes,
# each beside a smaller one, so every figure shows how it grows).
QUICK_SIZES = {
    "actions": [1],
    "parked": [20, 50],
    "reconcile": [20, 50],
    "metric-writes": [20_000],
    "listing": [5_000, 20_000],
    "dispatch": [5, 10],
}
FULL_SIZES = {
    "actions": [5],
    "parked": [1_000, 10_000],
    "reconcile": [100, 1_000],
    "metric-writes": [1_000_000],
    "listing": [100_000, 1_000_000],
    "dispatch": [20, 50],
}
SCENARIOS = list(QUICK_SIZES)
# Runs per size unless --runs says: the default pass one (the metric writes, cheap, five),
# --full three; the metric write ratio is a target "in each of 5 runs".
RUNS = {"metric-writes": 5}
QUICK_RUNS, FULL_RUNS = 1, 3
STEP = {"action": {"action": "click_mouse", "coordinates": [5, 5]}, "description": "Click"}
JOB_STEPS = [Step.model_validate(STEP) for _ in range(4)]
JOB_STEPS.insert(2, Step.model_validate(STEP | {"description": "Delete", "risk": "delete"}))
REMINDED = ApprovalPolicy(reminder_after=timedelta(seconds=2), expires_after=timedelta(hours=1))
POLL = 0.1
SETTLE = 2.0  # seconds: workflows waiting, the server's counters reported
WAIT = 600.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="a scenario to run (repeatable; default: all)",
    )
    parser.add_argument("--full", action="store_true", help="the targets' sizes (hours)")
    parser.add_argument("--sizes", help="comma-separated sizes (only with one --scenario)")
    parser.add_argument(
        "--runs", type=int, help="runs per size (default 1, --full 3; metric-writes 5)"
    )
    parser.add_argument(
        "--idle-eviction", type=float, help="parked: the worker's idle eviction (5 s; 30)"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        help="parked: at most this many jobs on their way to a gate, or from a reply to "
        "their end, at once (default: all at once)",
    )
    parser.add_argument(
        "--sticky-cache",
        type=int,
        help="parked: the worker's WORKER_STICKY_CACHE_SIZE (default: the setting's default)",
    )
    parser.add_argument(
        "--dispatch-seconds", type=float, help="dispatch: seconds of inserts (default 15; 5)"
    )
    parser.add_argument("--out", type=Path, help="write every run's figures as JSON here")
    args = parser.parse_args(argv)
    args.scenarios = args.scenario or SCENARIOS
    if args.sizes and len(args.scenarios) != 1:
        parser.error("--sizes needs exactly one --scenario")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    defaults = FULL_SIZES if args.full else QUICK_SIZES
    args.sizes_of = {
        name: [int(float(s)) for s in args.sizes.split(",")] if args.sizes else defaults[name]
        for name in args.scenarios
    }
    if any(size < 1 for sizes in args.sizes_of.values() for size in sizes):
        parser.error("sizes must be at least 1")
    runs = FULL_RUNS if args.full else QUICK_RUNS
    args.runs_of = {name: args.runs or RUNS.get(name, runs) for name in args.scenarios}
    if args.dispatch_seconds is None:
        args.dispatch_seconds = 15.0 if args.full else 5.0
    if args.idle_eviction is None:
        args.idle_eviction = 30.0 if args.full else 5.0
    return args


def load_average() -> float:
    """The machine's 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def spread(values: list[float]) -> dict[str, float]:
    """Min / median / max."""
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def growth(summary: dict[int, dict[str, dict[str, float]]]) -> dict[str, float]:
    """Per figure: (median at the largest size - at the smallest) / (size difference)."""
    sizes = sorted(summary)
    if len(sizes) < 2:
        return {}
    low, high = summary[sizes[0]], summary[sizes[-1]]
    return {
        name: round((high[name]["median"] - low[name]["median"]) / (sizes[-1] - sizes[0]), 6)
        for name in high
        if name in low
    }


# --- actions -------------------------------------------------------------------------


async def server_counter(stack: BenchStack, metric: str, label: str) -> dict[str, float]:
    """A counter of the dev server's Prometheus endpoint (default namespace), by ``label``."""
    assert stack.server_metrics_url is not None
    async with httpx.AsyncClient() as http:
        return parse_counter((await http.get(stack.server_metrics_url)).text, metric, label)


def parse_counter(text: str, metric: str, label: str) -> dict[str, float]:
    """``metric``'s samples in the default namespace of a Prometheus text page, summed by
    the value of ``label``."""
    totals: dict[str, float] = {}
    pattern = re.compile(rf"^{re.escape(metric)}\{{(.*)\}} ([0-9.e+-]+)$")
    for line in text.splitlines():
        found = pattern.match(line)
        if not found or 'namespace="default"' not in found[1]:
            continue
        value = re.search(rf'(?:^|,){re.escape(label)}="([^"]*)"', found[1])
        if value:
            totals[value[1]] = totals.get(value[1], 0.0) + float(found[2])
    return totals


def _per_unit(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    return {
        name: round((value - before.get(name, 0.0)) / count, 2)
        for name, value in sorted(after.items())
        if value - before.get(name, 0.0) > 0
    }


async def _job_requests(
    stack: BenchStack, count: int, policy: ApprovalPolicy | None = None
) -> list[AgentJobInput]:
    users = [(uuid.uuid4(), uuid.uuid4()) for _ in range(count)]
    async with stack.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await insert_users(cur, [u for u, _ in users], who="actions")
        await cur.executemany(
            "INSERT INTO public.workspaces (id, user_id, platform_name, agent_email) "
            "VALUES (%s, %s, 'Notion', 'agent@agency.localhost')",
            [(w, u) for u, w in users],
        )
    return [
        AgentJobInput(
            job_id=uuid.uuid4(),
            user_id=u,
            workspace_id=w,
            title="Tidy the specs",
            instruction="Remove old specs",
            steps=JOB_STEPS,
            approval=policy or ApprovalPolicy(),
        )
        for u, w in users
    ]


async def _approved_jobs(
    stack: BenchStack, desk: ReplyDesk, count: int, *, remind: bool
) -> list[Any]:
    """``count`` jobs of five steps, the third gated; each approved by an emailed reply
    (after its reminder went out, with ``remind``)."""
    requests = await _job_requests(stack, count, REMINDED if remind else None)
    handles = await start_all(requests, lambda r: start_agent_job(stack.client, stack.settings, r))
    emails = await desk.park(count)
    if remind:
        wanted = {f"approval-reminder/{approval_id}" for _, approval_id in emails}
        deadline = time.monotonic() + WAIT
        while not wanted <= set(stack.emulators.resend.sends_by_idempotency_key()):
            if time.monotonic() > deadline:
                raise TimeoutError("reminders not sent")
            stack.check_workers()
            await asyncio.sleep(POLL)
        desk.new_requests()  # the reminders are read; no request among them
    # A person answers later than the email's send completes: the gate is waiting (its
    # timer started), as it is in life.
    await asyncio.sleep(SETTLE)
    await asyncio.gather(*(desk.reply(e, a) for e, a in emails))
    failed, _ = await wait_all(handles, stack.check_workers)
    if failed:
        raise RuntimeError(f"{failed} jobs failed; see {stack.home}")
    return handles


async def _generations(stack: BenchStack, count: int) -> list[Any]:
    handles = await start_generations(stack, count)
    failed, _ = await wait_all(handles, stack.check_workers)
    if failed:
        raise RuntimeError(f"{failed} generations failed")
    return handles


async def _metric_syncs(stack: BenchStack, count: int) -> list[Any]:
    """``count`` Meta connections, each synced once by its Schedule (triggered)."""
    from activities.metric_schedules import reconcile_connection, schedule_id, trigger_sync
    from activities.metric_sync import credentials_context
    from db import metrics
    from workers.keys import credential_box

    box = credential_box(stack.settings)
    stack.emulators.meta.configure_account("1234567", campaigns=3)
    handles = []
    for _ in range(count):
        connection_id = uuid.uuid4()
        sealed = box.encrypt(
            json.dumps({"access_token": "EAAB-good-token"}), credentials_context(connection_id)
        )
        async with stack.pool.connection() as conn:
            row = await metrics.insert_connection(
                conn,
                connection_id=connection_id,
                platform="meta",
                credentials={"ciphertext": sealed},
                account_id="1234567",
                account_name="Bench account",
                sync_frequency=24,
                created_by=None,
            )
        await reconcile_connection(stack.client, row, stack.settings.temporal_task_queue)
        await trigger_sync(stack.client, connection_id)
        schedule = stack.client.get_schedule_handle(schedule_id(connection_id))
        deadline = time.monotonic() + WAIT
        while not (actions := (await schedule.describe()).info.recent_actions):
            if time.monotonic() > deadline:
                raise TimeoutError("the scheduled sync never started")
            await asyncio.sleep(POLL)
        workflow_id = actions[-1].action.workflow_id  # type: ignore[attr-defined]
        handles.append(stack.client.get_workflow_handle(workflow_id))
    for handle in handles:
        await handle.result()
    return handles


async def _priced(
    stack: BenchStack, run: Callable[[], Awaitable[list[Any]]], count: int
) -> dict[str, Any]:
    """Run ``count`` units; their actions from their histories and from the server."""
    await asyncio.sleep(SETTLE)  # the server reports its counters with a delay
    before = await server_counter(stack, "action", "action_type")
    handles = await run()
    await asyncio.sleep(SETTLE)
    after = await server_counter(stack, "action", "action_type")
    counted = [count_actions(await h.fetch_history()) for h in handles]
    totals = sorted({c.total for c in counted})
    # Heartbeats and queries are not in a history; the server counts those it received.
    beats = sum(v for k, v in _per_unit(before, after, 1).items() if "Heartbeat" in k)
    queries = sum(v for k, v in _per_unit(before, after, 1).items() if "Query" in k)
    per = counted[0] + Breakdown(heartbeats=round(beats / count), queries=round(queries / count))
    return {
        "count": count,
        "history_totals_seen": totals,
        "ours": per.as_dict(),
        "server_action_counter_per_unit": _per_unit(before, after, count),
    }


async def actions_run(size: int) -> dict[str, Any]:
    """One run: ``size`` units of each kind on a fresh stack."""
    async with bench_stack(server_metrics=True) as stack:
        # Higgsfield takes a while, as it does: the generation waits for its webhook.
        stack.emulators.higgsfield.run_s = SETTLE
        stack.start_worker("ours")
        desk = ReplyDesk(stack)
        await _approved_jobs(stack, desk, 1, remind=False)  # warm-up
        jobs = await _priced(stack, lambda: _approved_jobs(stack, desk, size, remind=False), size)
        reminded = await _priced(
            stack, lambda: _approved_jobs(stack, desk, size, remind=True), size
        )
        generations = await _priced(stack, lambda: _generations(stack, size), size)
        syncs = await _priced(stack, lambda: _metric_syncs(stack, size), size)
    reminder = {
        k: reminded["ours"].get(k, 0) - jobs["ours"].get(k, 0)
        for k in reminded["ours"]
        if reminded["ours"].get(k, 0) != jobs["ours"].get(k, 0)
    }
    units = {
        "agent_job": (jobs, naive_agent_job(5, 1).as_dict()),
        "generation": (generations, naive_generation().as_dict()),
        "metric_sync": (syncs, naive_metric_sync().as_dict()),
        "approval_reminder": ({"ours": reminder}, naive_reminder().as_dict()),
    }
    out: dict[str, Any] = {}
    for name, (figures, naive) in units.items():
        ours = figures["ours"].get("total", 0)
        out[name] = figures | {
            "naive": naive,
            "fewer_than_naive": round(1 - ours / naive["total"], 3) if naive["total"] else 0.0,
        }
    return out


# --- parked --------------------------------------------------------------------------


async def parked_run(
    size: int, idle_eviction: float, in_flight: int | None, sticky_cache: int | None
) -> dict[str, Any]:
    """``size`` jobs parked at their gates on a fresh stack and worker, then resumed."""
    settings: dict[str, Any] = {"worker_idle_eviction_seconds": idle_eviction}
    if sticky_cache is not None:
        settings["worker_sticky_cache_size"] = sticky_cache
    async with bench_stack(worker_settings=settings) as stack:
        stack.start_worker("ours")
        figures = await parked_memory(stack, ReplyDesk(stack), size, in_flight=in_flight)
    return {
        "in_flight": in_flight or size,
        "sticky_cache": stack.settings.worker_sticky_cache_size,
    } | {
        k: figures[k]
        for k in (
            "failed",
            "worker_rss_idle_mb",
            "worker_rss_parked_mb",
            "worker_rss_peak_mb",
            "worker_rss_settled_mb",
            "park_seconds",
            "resume_seconds",
        )
    }


# --- reconcile -----------------------------------------------------------------------


@contextlib.contextmanager
def counted_calls(client: Client) -> Iterator[Counter[str]]:
    """The calls ``client`` sends to the server meanwhile, by name, retries included (an
    instrument of the benchmark: it wraps the service client's one way out)."""
    service = client.service_client
    original = service._rpc_call
    calls: Counter[str] = Counter()

    async def counting(rpc: str, *args: Any, **kwargs: Any) -> Any:
        calls[rpc] += 1
        return await original(rpc, *args, **kwargs)

    service._rpc_call = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        del service._rpc_call  # the class's own again


async def reconcile_run(size: int) -> dict[str, Any]:
    """``schedules reconcile`` (the function the CLI runs) over ``size`` connections:
    first when every schedule is to be created, then when nothing changed. Server calls:
    those reconcile sends (counted at the client), and every request the server served
    meanwhile (its own scheduler workflows' included) from its ``service_requests``."""
    from activities.metric_schedules import reconcile_schedules
    from db import metrics

    async with bench_stack(server_metrics=True) as stack:
        async with stack.pool.connection() as conn, conn.transaction():
            for n in range(size):
                await metrics.insert_connection(
                    conn,
                    connection_id=uuid.uuid4(),
                    platform="meta" if n % 2 else "google_ads",
                    credentials={},
                    account_id=f"acct-{n}",
                    account_name=None,
                    sync_frequency=24,
                    created_by=None,
                )
        out: dict[str, Any] = {}
        for phase, want in (("first", "created"), ("again", "unchanged")):
            await asyncio.sleep(SETTLE)  # the server reports its counters with a delay
            before = await server_counter(stack, "service_requests", "operation")
            started = time.perf_counter()
            with counted_calls(stack.client) as sent:
                result = await reconcile_schedules(
                    stack.client, stack.pool, stack.settings.temporal_task_queue
                )
            seconds = time.perf_counter() - started
            await asyncio.sleep(SETTLE)
            after = await server_counter(stack, "service_requests", "operation")
            done = len(result.created) if want == "created" else result.unchanged
            if done != size:
                raise RuntimeError(f"{phase} reconcile: {want} {done} of {size}")
            served = _per_unit(before, after, size)
            out[f"{phase}_seconds"] = round(seconds, 2)
            out[f"{phase}_ms_per_connection"] = round(seconds * 1000 / size, 1)
            out[f"{phase}_calls_per_connection"] = round(sum(sent.values()) / size, 2)
            out[f"{phase}_calls"] = {k: round(v / size, 2) for k, v in sorted(sent.items())}
            out[f"{phase}_served_per_connection"] = round(sum(served.values()), 2)
            out[f"{phase}_served"] = served
    return out


# --- metric writes -------------------------------------------------------------------


async def metric_writes_runs(size: int, runs: int) -> list[dict[str, Any]]:
    """``runs`` times: ``size`` rows upserted with each platform's page size, then COPY;
    one stack whose WAL segments exist already (``warm_wal``), the metric table emptied
    between runs so each starts alike."""
    out = []
    async with bench_stack() as stack:
        await warm_wal(stack, size)
        for _ in range(runs):
            async with stack.pool.connection() as conn:
                await conn.execute("TRUNCATE public.performance_metrics")
            load, wal_before = load_average(), await wal_created_mb(stack)
            figures = await metric_upserts_interleaved(stack, size)
            out.append(
                {
                    "load_avg": load,
                    "wal_segments_created_mb": await wal_created_mb(stack) - wal_before,
                    "ratio_meta": figures["ratio_meta"],
                    "ratio_google_ads": figures["ratio_google_ads"],
                    "upsert_meta_rows_per_s": figures["upsert_meta_rows_per_s"],
                    "upsert_google_ads_rows_per_s": figures["upsert_google_ads_rows_per_s"],
                    "copy_rows_per_s": figures["copy_rows_per_s"],
                    "slices": figures["slices"],
                }
            )
    return out


# --- listing -------------------------------------------------------------------------

# As the app reads them: PostgREST signed in as the user, row-level security adds the
# user's filter (approvals: those of the user's jobs).
LISTINGS = {
    "jobs": "SELECT id, title, status, created_at FROM public.jobs "
    "ORDER BY created_at DESC LIMIT 50",
    "approvals": "SELECT id, job_id, status, description, created_at FROM public.approvals "
    "ORDER BY created_at DESC LIMIT 50",
    "pending approvals": "SELECT id, job_id, description, expires_at FROM public.approvals "
    "WHERE status = 'pending' ORDER BY created_at DESC LIMIT 50",
    "generations": "SELECT id, status, prompt_text, created_at FROM public.generations "
    "ORDER BY created_at DESC LIMIT 50",
    # The same approvals, asked through the user's jobs (PostgREST:
    # approvals?select=*,jobs!inner(user_id)&jobs.user_id=eq.<uid>): the policy alone
    # cannot use an index (its IN (SELECT ...) is a filter on every approval).
    "approvals via jobs": "SELECT a.id, a.job_id, a.status, a.description, a.created_at "
    "FROM public.approvals a JOIN public.jobs j ON j.id = a.job_id "
    "WHERE j.user_id = (SELECT auth.uid()) ORDER BY a.created_at DESC LIMIT 50",
    "pending approvals via jobs": "SELECT a.id, a.job_id, a.description, a.expires_at "
    "FROM public.approvals a JOIN public.jobs j ON j.id = a.job_id "
    "WHERE j.user_id = (SELECT auth.uid()) AND a.status = 'pending' "
    "ORDER BY a.created_at DESC LIMIT 50",
}
# One organization's rows, as a member reads them: PostgREST's `jobs?org_id=eq.<org>
# &order=created_at.desc&limit=50` (the org bound as a parameter), row-level security
# adding the member's policies ("Members read their organizations' ...", 0027).
ORG_LISTINGS = {
    "jobs": "SELECT id, title, status, created_at FROM public.jobs "
    "WHERE org_id = %(org)s ORDER BY created_at DESC LIMIT 50",
    "approvals": "SELECT id, job_id, status, description, created_at FROM public.approvals "
    "WHERE org_id = %(org)s ORDER BY created_at DESC LIMIT 50",
    "pending approvals": "SELECT id, job_id, description, expires_at FROM public.approvals "
    "WHERE org_id = %(org)s AND status = 'pending' ORDER BY created_at DESC LIMIT 50",
    "generations": "SELECT id, status, prompt_text, created_at FROM public.generations "
    "WHERE org_id = %(org)s ORDER BY created_at DESC LIMIT 50",
}
# The same pages through the listing functions (0035, `rpc/list_jobs` ...): the reader's
# own rows and each organization's read in index order, at most a page from each.
RPC_LISTINGS = {
    "jobs, rpc": "SELECT id, title, status, created_at FROM public.list_jobs()",
    "approvals, rpc": "SELECT id, job_id, status, description, created_at "
    "FROM public.list_approvals()",
    "pending approvals, rpc": "SELECT id, job_id, description, expires_at "
    "FROM public.list_approvals(status => 'pending')",
    "generations, rpc": "SELECT id, status, prompt_text, created_at FROM public.list_generations()",
}
ORG_RPC_LISTINGS = {
    "jobs, rpc": "SELECT id, title, status, created_at FROM public.list_jobs(org_id => %(org)s)",
    "approvals, rpc": "SELECT id, job_id, status, description, created_at "
    "FROM public.list_approvals(org_id => %(org)s)",
    "pending approvals, rpc": "SELECT id, job_id, description, expires_at "
    "FROM public.list_approvals(org_id => %(org)s, status => 'pending')",
    "generations, rpc": "SELECT id, status, prompt_text, created_at "
    "FROM public.list_generations(org_id => %(org)s)",
}
LISTINGS |= RPC_LISTINGS
ORG_LISTINGS |= ORG_RPC_LISTINGS
# A listing function's own statement, as auto_explain reports it (its EXPLAIN shows only
# a Function Scan): this transaction's, at NOTICE.
AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET LOCAL auto_explain.log_min_duration = 0",
    "SET LOCAL auto_explain.log_nested_statements = on",
    "SET LOCAL auto_explain.log_analyze = on",
    "SET LOCAL auto_explain.log_buffers = on",
    "SET LOCAL auto_explain.log_level = notice",
)
EXECUTIONS = 200
HEAVY_SHARE = 0.01  # the heavy user holds 1 % of every table, and so does the heavy org
HEAVY_ORG_MEMBERS = 20
TEAM_SHARE = 0.05  # rows in teams of ~100 rows each (3 members), the rest personal
TEAM_ROWS, TEAM_MEMBERS = 100, 3
# Of each hundred rows: 0 the heavy user's, 1 the heavy org's, 3-7 the teams', the rest
# (2, 8-99) personal: their position among those.
PERSONAL_SHARES = {
    s: i for i, s in enumerate(s for s in range(100) if s not in (0, 1, 3, 4, 5, 6, 7))
}


class Population:
    """Who owns row ``n`` of each table and which organization holds it.

    Users of ~100 rows each; the heavy user owns every hundredth row (1 %), in their
    organization of one like every user's own rows. The heavy organization holds another
    1 % (owned by its 20 members), teams of 3 members hold 5 % in organizations of ~100
    rows each; the typical organization is the first team. Nobody reading is a member of
    an organization they do not list."""

    def __init__(self, rows: int) -> None:
        self.users = [uuid.uuid4() for _ in range(max(2, rows // 100))]
        self.heavy, self.typical = self.users[0], self.users[1]
        self.personal = {u: uuid.uuid4() for u in self.users}
        self.heavy_org = uuid.uuid4()
        self.teams = [uuid.uuid4() for _ in range(max(1, round(rows * TEAM_SHARE / TEAM_ROWS)))]
        # Members other than the two users listed as users (they stay in their own only).
        others = self.users[2:] or [self.typical]
        self.heavy_members = [others[i % len(others)] for i in range(HEAVY_ORG_MEMBERS)]
        self.team_members = [
            [others[(HEAVY_ORG_MEMBERS + TEAM_MEMBERS * t + k) % len(others)] for k in range(3)]
            for t in range(len(self.teams))
        ]

    def row(self, n: int) -> tuple[uuid.UUID, uuid.UUID]:
        """(owner, organization) of row ``n``."""
        share = n % 100
        if share == 0:
            return self.heavy, self.personal[self.heavy]
        if share == 1:
            return self.heavy_members[(n // 100) % HEAVY_ORG_MEMBERS], self.heavy_org
        if 3 <= share <= 7:  # every status of the cycle of five
            t = (n // 100) % len(self.teams)
            return self.team_members[t][n % TEAM_MEMBERS], self.teams[t]
        # The 92 other rows of each hundred, dealt to every user but the heavy one in turn.
        dealt = (n // 100) * len(PERSONAL_SHARES) + PERSONAL_SHARES[share]
        owner = self.users[1 + dealt % (len(self.users) - 1)]
        return owner, self.personal[owner]

    def memberships(self) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """(org, user, role): each user admin of their own, the teams' members."""
        out = [(org, user, "admin") for user, org in self.personal.items()]
        out += [(self.heavy_org, u, "member") for u in dict.fromkeys(self.heavy_members)]
        for team, members in zip(self.teams, self.team_members, strict=True):
            out += [(team, u, "member") for u in dict.fromkeys(members)]
        return out


async def _fill(stack: BenchStack, rows: int) -> Population:
    """``rows`` jobs (one approval each) and ``rows`` generations by COPY, with their
    users and organizations (``Population``)."""
    people = Population(rows)
    statuses = ("completed", "completed", "failed", "cancelled", "waiting_approval")
    decided = {"waiting_approval": "pending", "completed": "approved"}
    async with stack.pool.connection() as conn, conn.transaction():
        # Loading data, not an app's writes: no triggers, no foreign-key checks.
        await conn.execute("SET LOCAL session_replication_role = replica")
        async with conn.cursor() as cur:
            await insert_users(cur, people.users, who="listing")
        copy_orgs = "COPY public.organizations (id, name, personal_for) FROM STDIN"
        copy_members = "COPY public.team_members (org_id, user_id, role) FROM STDIN"
        copy_jobs = (
            "COPY public.jobs (id, user_id, org_id, title, instruction, status, created_at) "
            "FROM STDIN"
        )
        # Triggers are off while loading: each approval's owner and organization are
        # written with it, as the database sets them from its job (0022, 0032).
        copy_approvals = (
            "COPY public.approvals (id, job_id, user_id, org_id, action_type, description, "
            "status, expires_at, created_at) FROM STDIN"
        )
        copy_generations = (
            "COPY public.generations (id, user_id, org_id, prompt_text, status, created_at) "
            "FROM STDIN"
        )
        base = time.time() - rows
        job_ids = [uuid.uuid4() for _ in range(rows)]

        def when(n: int) -> str:
            return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(base + n))

        async with conn.cursor() as cur:
            async with cur.copy(copy_orgs) as copy:
                for user, org in people.personal.items():
                    await copy.write_row((org, "Personal", user))
                await copy.write_row((people.heavy_org, "Heavy organization", None))
                for n, team in enumerate(people.teams):
                    await copy.write_row((team, f"Team {n}", None))
            async with cur.copy(copy_members) as copy:
                for membership in people.memberships():
                    await copy.write_row(membership)
            async with cur.copy(copy_jobs) as copy:
                for n, job_id in enumerate(job_ids):
                    status = statuses[n % len(statuses)]
                    owner, org = people.row(n)
                    await copy.write_row((job_id, owner, org, f"job {n}", "work", status, when(n)))
            async with cur.copy(copy_approvals) as copy:
                for n, job_id in enumerate(job_ids):
                    status = decided.get(statuses[n % len(statuses)], "rejected")
                    owner, org = people.row(n)
                    await copy.write_row(
                        (
                            uuid.uuid4(),
                            job_id,
                            owner,
                            org,
                            "delete",
                            f"step {n}",
                            status,
                            when(n + 86400),
                            when(n),
                        )
                    )
            async with cur.copy(copy_generations) as copy:
                for n in range(rows):
                    owner, org = people.row(n)
                    await copy.write_row(
                        (uuid.uuid4(), owner, org, f"prompt {n}", "completed", when(n))
                    )
    async with stack.pool.connection() as conn:  # as autovacuum leaves a settled table
        for table in ("jobs", "approvals", "generations", "profiles", "team_members"):
            await conn.execute(f"VACUUM ANALYZE public.{table}")
    return people


async def _listing(
    stack: BenchStack, user: uuid.UUID, query: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    from db.app_api import as_user

    claims = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    if "public.list_" in query:
        plan = await _function_plan(stack, claims, query, params)
    else:
        async with as_user(stack.pool, claims) as conn:
            explain = f"EXPLAIN (ANALYZE, BUFFERS) {query}"
            plan_rows = await (await conn.execute(explain, params)).fetchall()
        plan = "\n".join(str(next(iter(r.values()))) for r in plan_rows)
    async with as_user(stack.pool, claims) as conn:
        times = []
        for _ in range(EXECUTIONS):
            started = time.perf_counter()
            await (await conn.execute(query, params)).fetchall()
            times.append((time.perf_counter() - started) * 1000)
    big_seq_scan = bool(re.search(r"Seq Scan on (jobs|approvals|generations)\b", plan))
    return {
        "p50_ms": round(percentile(times, 50), 2),
        "p99_ms": round(percentile(times, 99), 2),
        "uses_index": "Index" in plan and not big_seq_scan,
        # Rows sorted after reading them all, not read in order from an index.
        "sorts": "Sort" in plan,
        "plan": plan,
    }


async def _function_plan(
    stack: BenchStack, claims: dict[str, Any], query: str, params: dict[str, Any] | None
) -> str:
    """The plan of the statement a listing function runs, signed in as PostgREST signs in
    (auto_explain must be loaded before the role changes: the pool's role may load it)."""
    from db.app_api import Q

    notices: list[str] = []
    async with stack.pool.connection() as conn:
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        async with conn.transaction():
            for setting in AUTO_EXPLAIN:
                await conn.execute(setting)
            await conn.execute(Q["act_as_user"])
            await conn.execute(Q["set_claims"], {"claims": json.dumps(claims)})
            await (await conn.execute(query, params)).fetchall()
    return "\n".join(n for n in notices if "public.list_" not in n)


async def listing_run(size: int) -> dict[str, Any]:
    """One fresh database of ``size`` rows per table; every listing for both users, and
    one organization's listings for a member of the heavy and of a typical one."""
    async with bench_stack() as stack:
        people = await _fill(stack, size)
        out: dict[str, Any] = {}
        for who, user in (("typical", people.typical), ("heavy", people.heavy)):
            for name, query in LISTINGS.items():
                out[f"{who} {name}"] = await _listing(stack, user, query)
        orgs = (
            ("typical org", people.team_members[0][0], people.teams[0]),
            ("heavy org", people.heavy_members[0], people.heavy_org),
        )
        for who, member, org in orgs:
            for name, query in ORG_LISTINGS.items():
                out[f"{who} {name}"] = await _listing(stack, member, query, {"org": org})
    return out


# --- dispatch ------------------------------------------------------------------------


# Each setup's figures under a name of its own: the dispatcher's latency, and the machine's.
DISPATCH_SETUPS = {"alone": "dispatcher", "worker": "with_generations"}


async def dispatch_run(rate: int, seconds: float) -> dict[str, Any]:
    """Rows inserted at ``rate`` per second for ``seconds``; insert → workflow started,
    the dispatcher alone and in the worker with the generations running."""
    rows = max(1, round(rate * seconds))
    out: dict[str, Any] = {}
    for setup, name in DISPATCH_SETUPS.items():
        notify = (await dispatch_latency.run_setup(setup, rows, float(rate)))["notify"]
        out[name] = {k: notify[k] for k in ("rows", "p50_ms", "p99_ms", "max_ms")}
    return out


# --- the command ---------------------------------------------------------------------


def _numbers(figures: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric figures of a run, nested names joined with '.'."""
    out: dict[str, float] = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, int | float):  # bools too
            out[name] = float(value)
        elif isinstance(value, dict):
            out |= _numbers(value, f"{name}.")
    return out


async def run_scenario(args: argparse.Namespace, scenario: str) -> dict[str, Any]:
    """Every size of one scenario, its runs; the runs, their spread and the growth."""
    sizes, runs_per_size = args.sizes_of[scenario], args.runs_of[scenario]
    runs: list[dict[str, Any]] = []
    for size in sizes:
        if scenario == "metric-writes":
            say(f"{scenario} size {size}: {runs_per_size} runs on one stack")
            for figures in await metric_writes_runs(size, runs_per_size):
                runs.append({"size": size} | figures)
            continue
        for index in range(runs_per_size):
            load = load_average()
            say(f"{scenario} size {size} run {index + 1} (load {load})")
            if scenario == "actions":
                figures = await actions_run(size)
            elif scenario == "parked":
                figures = await parked_run(
                    size, args.idle_eviction, args.in_flight, args.sticky_cache
                )
            elif scenario == "reconcile":
                figures = await reconcile_run(size)
            elif scenario == "listing":
                figures = await listing_run(size)
            else:
                figures = await dispatch_run(size, args.dispatch_seconds)
            runs.append(
                {"size": size, "load_avg": load, "load_avg_after": load_average()} | figures
            )
    summary: dict[int, dict[str, dict[str, float]]] = {}
    for size in sizes:
        numbers = [_numbers(r) for r in runs if r["size"] == size]
        names = sorted(set().union(*numbers)) if numbers else []
        summary[size] = {n: spread([x[n] for x in numbers if n in x]) for n in names if n != "size"}
    out = {
        "scenario": scenario,
        "sizes": sizes,
        "runs": runs,
        "summary": {str(k): v for k, v in summary.items()},
        "growth_per_unit": growth(summary),
    }
    return out | {"targets": targets(out)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario asked for, one after the other (each on stacks of its own)."""
    stop_on_sigterm()
    started = time.monotonic()
    scenarios = {}
    for scenario in args.scenarios:
        scenarios[scenario] = await run_scenario(args, scenario)
    return {
        "full": args.full,
        "scenarios": scenarios,
        "cpus": os.cpu_count(),
        "seconds": round(time.monotonic() - started, 1),
    }


# Targets of issue 31, each read from every run at the largest size (min or max).
LISTING_P99_MS = 10.0
PARKED_RSS_MB = 250.0
WRITE_RATIO = 0.5
FEWER_ACTIONS = 0.3
DISPATCH_P99_MS = 1000.0


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the scenario: what it asks, the figure (worst run at the largest
    size), and whether it is met."""
    if not out["summary"]:
        return []
    size = str(max(out["sizes"]))
    figures = out["summary"][size]
    checks: list[tuple[str, float, bool]] = []

    def worst(name: str, side: str) -> float | None:
        return figures[name][side] if name in figures else None

    scenario = out["scenario"]
    if scenario == "actions":
        for unit in ("agent_job", "generation"):
            least = worst(f"{unit}.fewer_than_naive", "min")
            if least is not None:
                checks.append(
                    (f"{unit}: >= 30 % fewer actions than naive", least, least >= FEWER_ACTIONS)
                )
    elif scenario == "parked":
        peak, failed = worst("worker_rss_peak_mb", "max"), worst("failed", "max")
        if peak is not None:
            checks.append((f"worker RSS < {PARKED_RSS_MB:g} MB (peak)", peak, peak < PARKED_RSS_MB))
        if failed is not None:
            checks.append(("every job resumes (failed)", failed, failed == 0))
    elif scenario == "metric-writes":
        for name in ("ratio_meta", "ratio_google_ads"):
            least = worst(name, "min")
            if least is not None:
                checks.append(
                    (f"{name} >= {WRITE_RATIO:g} in every run", least, least >= WRITE_RATIO)
                )
    elif scenario == "listing":
        for name in sorted(n for n in figures if n.endswith(".p99_ms")):
            listing = name.removesuffix(".p99_ms")
            p99 = figures[name]["max"]
            indexed = worst(f"{listing}.uses_index", "min")
            met = p99 < LISTING_P99_MS and indexed == 1
            checks.append((f"{listing}: index used, p99 < {LISTING_P99_MS:g} ms", p99, met))
    elif scenario == "dispatch":  # the dispatcher's own latency; with_generations is capacity
        p99 = worst("dispatcher.p99_ms", "max")
        if p99 is not None:
            what = f"dispatcher p99 < {DISPATCH_P99_MS:g} ms"
            checks.append((what, p99, p99 < DISPATCH_P99_MS))
    return [
        {"target": what, "size": int(size), "figure": figure, "met": met}
        for what, figure, met in checks
    ]


def table(out: dict[str, Any]) -> str:
    """Per scenario: min / median / max of each figure and size, its growth per unit,
    and its targets."""
    parts = []
    for scenario in out["scenarios"].values():
        parts.append(scenario_table(scenario))
    parts.append(f"{out['seconds']:g} s on {out['cpus']} CPUs")
    return "\n\n".join(parts)


def scenario_table(out: dict[str, Any]) -> str:
    """min / median / max of each figure and size, then its growth per unit, then the
    targets."""
    lines = [f"{out['scenario']}: {len(out['runs'])} runs; figure: min / median / max"]
    for size, figures in out["summary"].items():
        lines.append(f"size {size}:")
        for name, s in figures.items():
            if name.startswith("load_avg") or ".plan" in name:
                continue
            lines.append(f"  {name}: {s['min']:g} / {s['median']:g} / {s['max']:g}")
        loads = [r["load_avg"] for r in out["runs"] if str(r["size"]) == size]
        lines.append(f"  load average at each run's start: {', '.join(f'{x:g}' for x in loads)}")
    for name, slope in out["growth_per_unit"].items():
        if not name.startswith("load_avg"):
            lines.append(f"growth of {name}: {slope:g} per unit of size")
    for target in out.get("targets", []):
        verdict = "met" if target["met"] else "MISSED"
        lines.append(
            f"target {target['target']} at {target['size']}: {target['figure']:g} ({verdict})"
        )
    return "\n".join(lines)


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    out = asyncio.run(run(args))
    print(table(out))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
