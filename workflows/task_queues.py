"""The activity task queues of the vendor families, one per family, named after the
workflow's own task queue (``agency-orchestrator`` → ``agency-orchestrator-email``).

Each family's queue has its own worker options and rate limits (``workers/worker.py``):
the email queue's server-side activity rate keeps sends under Resend's per-team limit,
the agent jobs' under Steel's concurrent sessions. The names derive from the workflow's
task queue, which is in its history, so a deployment renames them all by renaming that
one (``TEMPORAL_TASK_QUEUE``) and workflows never read settings.

Runs that began before the queues were split replay with their activities on the
workflow's own queue (``workflow.patched``), so the worker of that queue keeps every
activity registered for them.
"""

from __future__ import annotations

from typing import Literal

from temporalio import workflow

Family = Literal["agent-jobs", "email", "generations", "syncs"]
AGENT_JOBS: Family = "agent-jobs"  # Steel browser sessions and Supermemory
EMAIL: Family = "email"  # Resend sends: approval emails, email notifications
GENERATIONS: Family = "generations"  # Higgsfield calls
SYNCS: Family = "syncs"  # ad-platform pulls (Meta, Google Ads)
FAMILIES: tuple[Family, ...] = (AGENT_JOBS, EMAIL, GENERATIONS, SYNCS)
# workflow.patched id: the vendor activities go to their family's queue. Older runs keep
# every activity on the workflow's own queue, as they ran.
PER_FAMILY_QUEUES = "per-family-task-queues"


def family_queue(workflow_queue: str, family: Family) -> str:
    """The task queue of ``family``'s activities for workflows on ``workflow_queue``."""
    return f"{workflow_queue}-{family}"


def activity_queue(family: Family) -> str | None:
    """Inside a workflow: the task queue of ``family``'s activities (None: the
    workflow's own, for runs started before the split)."""
    if not workflow.patched(PER_FAMILY_QUEUES):
        return None
    return family_queue(workflow.info().task_queue, family)
