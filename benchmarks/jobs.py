"""Scenarios 1, 3 (jobs), 5 and 6: agent jobs answered by emailed replies, the bare
baseline, parked jobs, and what a job persists and costs the server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from temporalio.client import WorkflowUpdateFailedError

from benchmarks.bare import BARE_TASK_QUEUE, BareJob, BarePlan
from benchmarks.common import (
    failure_unless_cancelled,
    insert_users,
    percentile,
    rate,
    start_all,
    wait_all,
)
from benchmarks.stack import BenchStack
from workers.idle_eviction import sweep_interval
from workers.starters import start_agent_job
from workflows.models.agent_job import AgentJobInput
from workflows.models.steps import Step

REPLY_THREADS = 16  # webhook posts in flight at once (each waits for the update's result)
POLL_INTERVAL = 0.05
RELEASE_ATTEMPTS = 500
RELEASE_RETRY_DELAY = 0.02
PARK_TIMEOUT = 1800.0  # seconds to wait for every gate of a scenario to open
STALL_TIMEOUT = 600.0  # parking in waves: seconds without a gate opening (a stuck run)
STEPS = [
    Step.model_validate(
        {"action": {"action": "navigate", "url": "https://notion.so/specs"}, "description": "Open"}
    ),
    Step.model_validate(
        {
            "action": {"action": "click_mouse", "coordinates": [5, 5]},
            "description": "Delete 'Old Specs'",
            "risk": "delete",
        }
    ),
]


@dataclass
class Reply:
    """One emailed reply: when its webhook was posted and when the ingress answered."""

    approval_id: UUID
    sent_at: float
    answered_at: float


class ReplyDesk:
    """Finds approval request emails in the Resend emulator and replies APPROVE to them."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.resend = stack.emulators.resend
        self._read = 0  # sends already read (the benchmark never resets the emulator)
        self.executor = ThreadPoolExecutor(REPLY_THREADS, thread_name_prefix="reply")

    def new_requests(self) -> list[tuple[str, UUID]]:
        """Request emails not returned before: (email id, approval id)."""
        found = []
        emails = self.resend.sent_emails(self._read)
        self._read += len(emails)
        for email in emails:
            key = str(email.get("idempotency_key") or "")
            if key.startswith("approval-request/"):
                found.append((str(email["id"]), UUID(key.split("/", 1)[1])))
        return found

    async def park(self, count: int) -> list[tuple[str, UUID]]:
        """Wait until ``count`` new request emails were sent (every gate is open)."""
        emails: list[tuple[str, UUID]] = []
        deadline = time.monotonic() + PARK_TIMEOUT
        while len(emails) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(emails)} of {count} approval gates opened")
            self.stack.check_workers()
            await asyncio.sleep(POLL_INTERVAL)
            emails += self.new_requests()
        return emails

    def _reply(self, email_id: str, approval_id: UUID, sent_at: float) -> Reply:
        self.resend.reply_to_email(email_id, "APPROVE\nGo ahead.")
        return Reply(approval_id, sent_at, time.time())

    async def reply(self, email_id: str, approval_id: UUID) -> Reply:
        """Reply from a thread (the emulator posts the webhook synchronously). The reply
        counts as sent now, so time spent waiting for a free thread is part of its latency."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, self._reply, email_id, approval_id, time.time()
        )


async def job_requests(stack: BenchStack, count: int) -> list[AgentJobInput]:
    """``count`` jobs of two steps (the second one risky), each for a user of its own."""
    users = [(uuid.uuid4(), uuid.uuid4()) for _ in range(count)]
    async with stack.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await insert_users(cur, [u for u, _ in users], who="owner")
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
            steps=STEPS,
        )
        for u, w in users
    ]


async def start_jobs(stack: BenchStack, count: int) -> tuple[list[Any], list[AgentJobInput]]:
    """Create users and start ``count`` jobs; (handles, requests)."""
    requests = await job_requests(stack, count)
    handles = await start_all(requests, lambda r: start_agent_job(stack.client, stack.settings, r))
    return handles, requests


async def jobs_throughput(stack: BenchStack, desk: ReplyDesk, count: int) -> dict[str, Any]:
    """Start ``count`` jobs and reply to each gate as soon as its email is sent."""
    requests = await job_requests(stack, count)
    started = time.time()
    handles = await start_all(requests, lambda r: start_agent_job(stack.client, stack.settings, r))
    finished = asyncio.create_task(wait_all(handles, stack.check_workers))
    replies: list[asyncio.Future[Reply]] = []
    while not finished.done():
        for email_id, approval_id in desk.new_requests():
            replies.append(asyncio.ensure_future(desk.reply(email_id, approval_id)))
        await asyncio.sleep(POLL_INTERVAL)
    failed, ended = finished.result()
    await asyncio.gather(*replies)
    seconds = ended - started
    return {
        "jobs": count,
        "failed": failed,
        "seconds": round(seconds, 2),
        "jobs_per_s": rate(count - failed, seconds),
        "job_ids": [str(r.job_id) for r in requests],
    }


async def bare_throughput(
    stack: BenchStack, plan: BarePlan, count: int, tag: str
) -> dict[str, Any]:
    """The same count of bare workflows; each gets its message as soon as it waits for it."""
    started = time.time()
    handles = await start_all(
        list(range(count)),
        lambda i: stack.client.start_workflow(
            BareJob.run, plan, id=f"bare-{tag}-{uuid.uuid4()}", task_queue=BARE_TASK_QUEUE
        ),
    )
    finished = asyncio.create_task(wait_all(handles, stack.check_workers))
    gate = asyncio.Semaphore(REPLY_THREADS)  # as many messages in flight as our webhooks
    refused = [0]
    sent: list[asyncio.Task[None]] = []

    async def release(workflow_id: str) -> None:
        async with gate:
            await send_release(stack, workflow_id, plan, refused)

    while not finished.done():
        try:
            async with asyncio.timeout(POLL_INTERVAL):
                workflow_id = await stack.bare_waiting.get()
        except TimeoutError:
            continue
        sent.append(asyncio.create_task(release(workflow_id)))
    failed, ended = finished.result()
    await asyncio.gather(*sent)
    seconds = ended - started
    return {
        "workflows": count,
        "failed": failed,
        "seconds": round(seconds, 2),
        "per_s": rate(count - failed, seconds),
        "updates_refused_before_wait": refused[0],
    }


async def send_release(
    stack: BenchStack, workflow_id: str, plan: BarePlan, refused: list[int]
) -> None:
    """The bare workflow's message; an update refused before the wait is sent again."""
    handle = stack.client.get_workflow_handle(workflow_id)
    if plan.message == "signal":
        await handle.signal("release_signal", "completed")
        return
    for _ in range(RELEASE_ATTEMPTS):
        try:
            await handle.execute_update("release", "approve")
            return
        except WorkflowUpdateFailedError:
            refused[0] += 1
            await asyncio.sleep(RELEASE_RETRY_DELAY)
    raise RuntimeError(f"{workflow_id} never waited for its release")


RESUME_TIMES = """
SELECT a.id AS approval_id,
       (SELECT max(t.at) FROM status_transitions t
         WHERE t.entity = 'approvals' AND t.entity_id = a.id
           AND t.to_status = 'approved') AS approved_at,
       (SELECT max(t.at) FROM status_transitions t
         WHERE t.entity = 'jobs' AND t.entity_id = a.job_id
           AND t.from_status = 'waiting_approval' AND t.to_status = 'running') AS resumed_at
FROM approvals a WHERE a.id = ANY(%(ids)s)
"""


async def reply_latency(
    stack: BenchStack, desk: ReplyDesk, count: int, per_second: float
) -> dict[str, Any]:
    """Park ``count`` jobs at their gates, reply at a steady rate, time each resume.

    Latency: from just before the webhook is posted to the later of the approval's
    ``approved`` and the job's ``waiting_approval → running`` transitions (their
    ``status_transitions.at``; both are written in one transaction).
    """
    handles, _ = await start_jobs(stack, count)
    emails = await desk.park(count)
    first = time.monotonic()
    pending: list[asyncio.Future[Reply]] = []
    for index, (email_id, approval_id) in enumerate(emails):
        delay = first + index / per_second - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.ensure_future(desk.reply(email_id, approval_id)))
    replies = await asyncio.gather(*pending)
    failed, _ = await wait_all(handles, stack.check_workers)
    rows = await stack.fetchall(RESUME_TIMES, {"ids": [r.approval_id for r in replies]})
    by_id = {row["approval_id"]: row for row in rows}
    resume_ms: list[float] = []
    missing = 0
    for reply in replies:
        row = by_id.get(reply.approval_id)
        if row is None or row["approved_at"] is None or row["resumed_at"] is None:
            missing += 1
            continue
        done = max(row["approved_at"], row["resumed_at"]).timestamp()
        resume_ms.append((done - reply.sent_at) * 1000)
    webhook_ms = [(r.answered_at - r.sent_at) * 1000 for r in replies]
    return {
        "samples": len(resume_ms),
        "missing": missing,
        "failed_jobs": failed,
        "reply_rate_per_s": per_second,
        "p50_ms": round(percentile(resume_ms, 50), 1),
        "p99_ms": round(percentile(resume_ms, 99), 1),
        "max_ms": round(max(resume_ms, default=0.0), 1),
        "webhook_answer_p50_ms": round(percentile(webhook_ms, 50), 1),
        "webhook_answer_p99_ms": round(percentile(webhook_ms, 99), 1),
    }


async def parked_memory(
    stack: BenchStack,
    desk: ReplyDesk,
    count: int,
    worker_env: Mapping[str, str] | None = None,
    in_flight: int | None = None,
) -> dict[str, Any]:
    """A fresh worker (with ``worker_env``), ``count`` jobs parked at their gates: its RSS when
    the last one parked and once the worker has evicted the idle runs; then resume them all.

    ``in_flight``: at most that many jobs between their start and their gate, and between
    their reply and their end (jobs arriving and answered over time); None starts them all
    at once and replies to all at once (a burst)."""
    await stack.stop_worker("ours")
    stack.start_worker("ours", dict(worker_env or {}))
    idle_mb = await _settled_rss(stack)  # imports done, polling
    peak = [idle_mb]
    sampling = asyncio.create_task(_sample_rss(stack, peak))
    try:
        started = time.time()
        if in_flight is None:
            handles, requests = await start_jobs(stack, count)
            emails = await desk.park(count)
        else:
            handles, requests, emails = await _park_in_waves(stack, desk, count, in_flight)
        parked_s = time.time() - started
        await asyncio.sleep(2)  # the last gates' workflow tasks complete
        samples = []
        for _ in range(5):
            samples.append(stack.worker_rss_mb())
            await asyncio.sleep(0.5)
        parked_mb = max(samples)
        settled_mb = None
        idle_eviction = stack.settings.worker_idle_eviction_seconds
        override = (worker_env or {}).get("WORKER_IDLE_EVICTION_SECONDS")
        if override is not None:  # this worker's own (empty: off)
            idle_eviction = float(override) if override else None
        if idle_eviction is not None:
            # Every parked run idle past the eviction age and evicted by a sweep; the core
            # drops a run after the sweep that asked, so the collection and the trim come
            # with the sweep after that.
            await asyncio.sleep(idle_eviction + 2 * sweep_interval(idle_eviction) + 5)
            settled_mb = stack.worker_rss_mb()
        resume_started = time.time()
        cpu_before = stack.cpu_seconds()
        if in_flight is None:
            replies = [asyncio.ensure_future(desk.reply(e, a)) for e, a in emails]
            failed, ended = await wait_all(handles, stack.check_workers)
            await asyncio.gather(*replies)
        else:
            failed, ended = await _resume_in_waves(
                stack, desk, handles, requests, emails, in_flight
            )
        cpu_after = stack.cpu_seconds()
    finally:
        sampling.cancel()
    resume_s = ended - resume_started
    return {
        "jobs": count,
        "failed": failed,
        "worker_rss_idle_mb": round(idle_mb, 1),
        "worker_rss_parked_mb": round(parked_mb, 1),
        "worker_rss_peak_mb": round(max(peak), 1),
        # After the idle runs were evicted (None: idle eviction is off).
        "worker_rss_settled_mb": None if settled_mb is None else round(settled_mb, 1),
        "idle_eviction_s": idle_eviction,
        "park_seconds": round(parked_s, 2),
        "resume_seconds": round(resume_s, 2),
        "resumed_per_s": rate(count - failed, resume_s),
        # CPU per resumed job (its reply, the rest of the job, and a replay if evicted).
        "resume_cpu_ms_per_job": {
            name: round((used - cpu_before.get(name, 0.0)) * 1000 / count, 1)
            for name, used in cpu_after.items()
        },
    }


async def _park_in_waves(
    stack: BenchStack, desk: ReplyDesk, count: int, in_flight: int
) -> tuple[list[Any], list[AgentJobInput], list[tuple[str, UUID]]]:
    """Start ``count`` jobs, a new one as each started one parks at its gate, never more
    than ``in_flight`` on their way; (handles, requests, request emails)."""
    requests = await job_requests(stack, count)
    handles: list[Any] = []
    emails: list[tuple[str, UUID]] = []
    progress = time.monotonic()
    while len(emails) < count:
        room = in_flight - (len(handles) - len(emails))
        if room > 0 and len(handles) < count:
            wave = requests[len(handles) : len(handles) + room]
            handles += await start_all(
                wave, lambda r: start_agent_job(stack.client, stack.settings, r)
            )
        stack.check_workers()
        await asyncio.sleep(POLL_INTERVAL)
        new = desk.new_requests()
        if new:
            emails += new
            progress = time.monotonic()
        elif time.monotonic() - progress > STALL_TIMEOUT:
            raise TimeoutError(f"only {len(emails)} of {count} gates opened; none for a while")
    return handles, requests, emails


async def _resume_in_waves(
    stack: BenchStack,
    desk: ReplyDesk,
    handles: list[Any],
    requests: list[AgentJobInput],
    emails: list[tuple[str, UUID]],
    in_flight: int,
) -> tuple[int, float]:
    """Reply to every gate, never more than ``in_flight`` jobs between their reply and their
    end; (failed, wall time when the last ended)."""
    rows = await stack.fetchall("SELECT id, job_id FROM public.approvals", {})
    job_of = {r["id"]: r["job_id"] for r in rows}
    handle_of = dict(zip((r.job_id for r in requests), handles, strict=True))
    gate = asyncio.Semaphore(in_flight)
    failed = 0
    ended = time.time()

    async def one(email_id: str, approval_id: UUID) -> None:
        nonlocal failed, ended
        async with gate:
            await desk.reply(email_id, approval_id)
            try:
                await handle_of[job_of[approval_id]].result()
            except Exception:
                failure_unless_cancelled()
                failed += 1
            ended = max(ended, time.time())

    everything = asyncio.gather(*(one(e, a) for e, a in emails))
    while not everything.done():
        await asyncio.wait([everything], timeout=1.0)
        try:
            stack.check_workers()
        except BaseException:
            everything.cancel()
            raise
    everything.result()
    return failed, ended


async def _settled_rss(stack: BenchStack, *, at_least: float = 3.0, at_most: float = 60.0) -> float:
    """The worker's RSS once it stops growing (a loaded machine takes a while to import)."""
    started = time.monotonic()
    await asyncio.sleep(at_least)
    last = stack.worker_rss_mb()
    while time.monotonic() - started < at_most:
        await asyncio.sleep(1)
        now = stack.worker_rss_mb()
        if abs(now - last) < 0.5:
            return now
        last = now
    return last


async def _sample_rss(stack: BenchStack, peak: list[float]) -> None:
    while True:
        peak.append(stack.worker_rss_mb())
        await asyncio.sleep(1)


TRANSITIONS = """
SELECT t.entity, count(*) AS n FROM status_transitions t
WHERE (t.entity = 'jobs' AND t.entity_id = ANY(%(ids)s))
   OR (t.entity = 'approvals'
       AND t.entity_id IN (SELECT id FROM approvals WHERE job_id = ANY(%(ids)s)))
GROUP BY t.entity ORDER BY t.entity
"""


async def transitions_per_job(stack: BenchStack, job_ids: list[str]) -> dict[str, float]:
    """Rows of ``status_transitions`` per job, by entity and in total."""
    rows = await stack.fetchall(TRANSITIONS, {"ids": [UUID(i) for i in job_ids]})
    per = {str(r["entity"]): round(int(r["n"]) / len(job_ids), 2) for r in rows}
    per["total"] = round(sum(per.values()), 2)
    return per
