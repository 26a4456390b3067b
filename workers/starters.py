"""Starting workflows from processes (CLI, dev stack, ingress): ids, summaries, queue.

A job's or generation's workflow id is its row's id, and it is used once: a start whose
id was used before is refused (``REJECT_DUPLICATE``), even after the first run closed,
so the same job never runs its steps twice and the same generation is never submitted
by a second run. The server remembers closed runs for the namespace's retention period.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workers.settings import Settings
from workflows.agent_job import AgentJob
from workflows.generation import Generation
from workflows.models.agent_job import AgentJobInput, AgentJobResult
from workflows.models.generation import GenerationInput, GenerationResult
from workflows.search_attributes import GENERATION_STATUS, JOB_STATUS, MODEL, USER_ID


class DuplicateStart(Exception):
    """A workflow with this id was started before (it may have finished already)."""

    def __init__(self, what: str, workflow_id: str) -> None:
        super().__init__(
            f"{what} was already started (workflow {workflow_id}); its id cannot be used again"
        )
        self.workflow_id = workflow_id


def job_workflow_id(job_id: object) -> str:
    """The workflow id of a job: ``job-<jobs.id>``."""
    return f"job-{job_id}"


async def start_agent_job(
    client: Client, settings: Settings, request: AgentJobInput
) -> WorkflowHandle[AgentJob, AgentJobResult]:
    """Start an AgentJob; the job id is its workflow id, so a second start is refused
    (``DuplicateStart``)."""
    return await _start_once(
        client,
        f"job {request.job_id}",
        AgentJob.run,
        request,
        id=job_workflow_id(request.job_id),
        task_queue=settings.temporal_task_queue,
        static_summary=request.title[:200],
        static_details=f"{len(request.steps)} planned steps · {request.instruction[:500]}",
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(JOB_STATUS, "pending"),
                SearchAttributePair(USER_ID, str(request.user_id)),
            ]
        ),
    )


async def start_generation(
    client: Client, settings: Settings, request: GenerationInput
) -> WorkflowHandle[Generation, GenerationResult]:
    """Start a Generation (``generation-<generations.id>``); the summary is the prompt. A
    second start of the same generation is refused (``DuplicateStart``)."""
    prompt = request.prompt_text or f"prompt {request.prompt_id}"
    return await _start_once(
        client,
        f"generation {request.generation_id}",
        Generation.run,
        request,
        id=f"generation-{request.generation_id}",
        task_queue=settings.temporal_task_queue,
        static_summary=" ".join(prompt.split()[:12])[:200],
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(GENERATION_STATUS, "pending"),
                SearchAttributePair(USER_ID, str(request.user_id)),
                SearchAttributePair(MODEL, request.model),
            ]
        ),
    )


async def _start_once(client: Client, what: str, run: Any, arg: Any, **options: Any) -> Any:
    """Start a workflow whose id may never be reused."""
    try:
        return await client.start_workflow(
            run, arg, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, **options
        )
    except WorkflowAlreadyStartedError:
        raise DuplicateStart(what, options["id"]) from None
