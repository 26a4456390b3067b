"""`orchestrator health`: proof that the worker on this host polls its task queue.

A worker process can be up with its pollers stuck (lost connection, wedged event loop); an
open metrics port proves nothing. The server knows better: ``DescribeTaskQueue`` lists the
pollers it has seen on a task queue, each with its identity and the time of its last poll.
The worker's identity is the SDK's ``<pid>@<hostname>``, so the check looks, on every task
queue this worker polls (``WORKER_QUEUES``: the workflows' queue, its workflow and its
activity side, and each vendor family's activity queue), for a poller of this host (a
container's hostname is its own) that polled within ``--max-age`` seconds. The compose
file's worker health check runs it; it also prints which vendor families the settings
enable.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from workflows.task_queues import FAMILIES, family_queue

# A long poll lasts up to ~70 s when there is no task, and the server records a poller
# when its poll arrives; several pollers per type overlap, so two minutes is ample.
DEFAULT_MAX_AGE = timedelta(seconds=120)
POLLED = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


@dataclass(frozen=True)
class PollerCheck:
    """What the server says about this worker's pollers of one task queue type."""

    kind: str  # workflow | activity (the workflows' queue), or a family's name
    identity: str | None  # the matching poller's identity, None if none was seen
    seconds_ago: float | None
    task_queue: str = ""  # the task queue it looked at

    def ok(self, max_age: timedelta) -> bool:
        return self.seconds_ago is not None and self.seconds_ago <= max_age.total_seconds()


def identity_matcher(identity: str | None) -> tuple[str, Any]:
    """A description of whom we look for, and the predicate: the exact identity when given,
    else any identity of this host (``...@<hostname>``)."""
    if identity:
        return identity, lambda seen: seen == identity
    suffix = f"@{socket.gethostname()}"
    return f"*{suffix}", lambda seen: seen.endswith(suffix)


def latest_poll(
    kind: str, pollers: list[PollerInfo], matches: Any, now: datetime, task_queue: str = ""
) -> PollerCheck:
    """The most recent poll among ``pollers`` whose identity ``matches``."""
    seen = [
        (p.identity, p.last_access_time.ToDatetime(tzinfo=UTC))
        for p in pollers
        if matches(p.identity) and p.HasField("last_access_time")
    ]
    if not seen:
        return PollerCheck(kind, None, None, task_queue)
    identity, last = max(seen, key=lambda item: item[1])
    return PollerCheck(kind, identity, max(0.0, (now - last).total_seconds()), task_queue)


def polled(
    task_queue: str, queues: Sequence[str]
) -> list[tuple[str, str, TaskQueueType.ValueType]]:
    """What a worker polling ``queues`` (``WORKER_QUEUES`` names) polls: (kind, task queue,
    type) for the workflows' queue's two sides and each family's activity queue."""
    found = []
    if "workflows" in queues:
        found += [(kind, task_queue, queue_type) for kind, queue_type in POLLED.items()]
    for family in FAMILIES:
        if family in queues:
            found.append((family, family_queue(task_queue, family), POLLED["activity"]))
    return found


async def poller_checks(
    client: Client,
    task_queue: str,
    identity: str | None,
    *,
    queues: Sequence[str] = ("workflows",),
    now: datetime | None = None,
) -> list[PollerCheck]:
    """One check per task queue and type a worker polling ``queues`` polls."""
    _, matches = identity_matcher(identity)
    checks = []
    for kind, name, queue_type in polled(task_queue, queues):
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=queue_type,
            )
        )
        at = now or datetime.now(UTC)
        checks.append(latest_poll(kind, list(response.pollers), matches, at, name))
    return checks
