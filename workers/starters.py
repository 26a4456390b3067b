"""Starting workflows from processes (CLI, dev stack, ingress): ids, summaries, queue."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from workers.settings import Settings
from workflows.agent_job import AgentJob
from workflows.generation import Generation
from workflows.models.agent_job import AgentJobInput, AgentJobResult
from workflows.models.generation import GenerationInput, GenerationResult
from workflows.search_attributes import GENERATION_STATUS, JOB_STATUS, MODEL, USER_ID


def job_workflow_id(job_id: object) -> str:
    """The workflow id of a job: ``job-<jobs.id>``."""
    return f"job-{job_id}"


async def start_agent_job(
    client: Client, settings: Settings, request: AgentJobInput
) -> WorkflowHandle[AgentJob, AgentJobResult]:
    """Start an AgentJob; the job id is its workflow id, so a second start is refused."""
    return await client.start_workflow(
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
    """Start a Generation (``generation-<generations.id>``); the summary is the prompt."""
    prompt = request.prompt_text or f"prompt {request.prompt_id}"
    return await client.start_workflow(
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
