"""The chaos test's work: agent jobs with two approvals each, generations, metric syncs,
and an approver who answers every approval email by a signed reply through the ingress."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowHandle

from activities.metric_schedules import backfill_workflow_id
from tests.generations.helpers import start as start_generation
from tests.generations.helpers import user_with_key
from tests.harness import Stack
from tests.metrics import SINCE, UNTIL, add_connection
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job, step
from workflows.metric_sync import MetricSync
from workflows.models.agent_job import AgentJobInput
from workflows.models.metric_sync import MetricSyncInput

UPDATE_STEP = step({"action": "type_text", "text": "Specs (final)"}, "Retitle the page", "update")
JOB_STEPS = [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[2], UPDATE_STEP]
APPROVALS_PER_JOB = sum(1 for s in JOB_STEPS if s.risk != "none")
CAMPAIGNS = 150  # 150 campaigns x 7 days = 3 pages of Meta's 500 rows per weekly slice (1,050 rows)
REPLY_RETRY_S = 2.0  # a reply the ingress could not handle is sent again after this


@dataclass
class Work:
    """Everything started, by kind; the handles are filled in as the starts happen."""

    jobs: list[AgentJobInput] = field(default_factory=list)
    generation_users: list[uuid.UUID] = field(default_factory=list)
    connections: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (id, account)
    handles: dict[str, WorkflowHandle[Any, Any]] = field(default_factory=dict)

    def kinds(self) -> list[tuple[str, int]]:
        """One (kind, index) per workflow to start."""
        return (
            [("job", i) for i in range(len(self.jobs))]
            + [("generation", i) for i in range(len(self.generation_users))]
            + [("sync", i) for i in range(len(self.connections))]
        )


async def prepare(stack: Stack, size: int) -> Work:
    """Rows the work needs (users, workspaces, keys, connections): written before the chaos."""
    work = Work()
    for i in range(size):
        work.jobs.append(
            await job_request(stack, JOB_STEPS, email=f"approver-{i}-{uuid.uuid4().hex[:6]}@ex.com")
        )
        work.generation_users.append(await user_with_key(stack))
        account = f"7{i:06d}"
        stack.emulators.meta.configure_account(account, campaigns=CAMPAIGNS)
        connection = await add_connection(stack, platform="meta", account_id=account)
        work.connections.append((connection.id, account))
    return work


async def start_one(stack: Stack, work: Work, kind: str, index: int) -> None:
    """Start one workflow (Temporal only: no database access, so it works in the outage)."""
    if kind == "job":
        handle = await start_job(stack, work.jobs[index])
    elif kind == "generation":
        _, handle = await start_generation(
            stack, work.generation_users[index], f"chaos portrait {index}"
        )
    else:
        connection_id, _ = work.connections[index]
        handle = await stack.client.start_workflow(
            MetricSync.run,
            MetricSyncInput(connection_id=connection_id, window_start=SINCE, window_end=UNTIL),
            id=backfill_workflow_id(connection_id, SINCE, UNTIL),
            task_queue=stack.settings.temporal_task_queue,
        )
    work.handles[f"{kind}-{index}"] = handle


@dataclass
class Approver:
    """Approves each approval email once it arrives (after a human-like delay), resending
    the reply until the ingress applies it, then replies REJECT once: it must be refused."""

    stack: Stack
    rng: random.Random
    approved: set[str] = field(default_factory=set)
    late_rejections: dict[str, str] = field(default_factory=dict)  # approval id -> outcome
    replies: int = 0
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch the outbox and answer every approval request until ``stop``."""
        while not stop.is_set():
            for email in self.stack.emulators.resend.sent_emails():
                key = email.get("idempotency_key") or ""
                if key.startswith("approval-request/") and key not in self._tasks:
                    approval_id = key.removeprefix("approval-request/")
                    self._tasks[key] = asyncio.create_task(
                        self._answer(approval_id, email["id"], self.rng.uniform(0.5, 4.0))
                    )
            await asyncio.sleep(0.2)

    async def finish(self, timeout: float) -> None:
        """Wait for the late rejections in flight; cancel what is left after ``timeout``."""
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()

    async def _answer(self, approval_id: str, email_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            outcome = await self._reply(email_id, "APPROVE")
            if "applied" in outcome or "already approved" in outcome:
                break
            await asyncio.sleep(REPLY_RETRY_S)
        self.approved.add(approval_id)
        self.late_rejections[approval_id] = await self._reply(email_id, "REJECT")

    async def _reply(self, email_id: str, text: str) -> str:
        """Reply through the emulator (it posts the Svix-signed webhook); the outcome."""
        resend = self.stack.emulators.resend
        self.replies += 1
        started = time.monotonic()
        reply_id = await asyncio.to_thread(resend.reply_to_email, email_id, text)
        for delivery in reversed(resend.deliveries()):
            if delivery["email_id"] == reply_id:
                return f"{delivery['status']} {delivery['response'] or delivery['error']}"
        return f"no delivery after {time.monotonic() - started:.1f}s"
