"""`orchestrator jobs`: start agent jobs from a JSON file, list, follow and cancel them."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workers.cli.common import (
    CliError,
    cancel_workflow,
    emit,
    get_or_fail,
    newest_id,
    operator_context,
    uuid_arg,
)


def add_commands(sub: Any) -> None:
    """Add the ``jobs`` command group."""
    jobs = sub.add_parser("jobs", help="start and follow agent jobs")
    jobs_sub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = jobs_sub.add_parser("start", help="start a job from a JSON file")
    start.add_argument(
        "--file", required=True, help="job JSON (an example: devstack/demo-job.json)"
    )
    start.add_argument(
        "--org", type=uuid.UUID, help="the organization the job is for (its owner's by default)"
    )
    start.set_defaults(run=jobs_start)
    lst = jobs_sub.add_parser("list", help="recent jobs")
    lst.add_argument("--status", help="only jobs with this status")
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    lst.add_argument("--org", type=uuid.UUID, help="only jobs of this organization")
    lst.set_defaults(run=jobs_list)
    status = jobs_sub.add_parser("status", help="a job and its steps")
    status.add_argument("job_id", type=uuid_arg, help="a job id, or 'latest'")
    status.set_defaults(run=jobs_status)
    cancel = jobs_sub.add_parser("cancel", help="cancel a job (its browser session is released)")
    cancel.add_argument("job_id", type=uuid_arg, help="a job id")
    cancel.set_defaults(run=jobs_cancel)


async def jobs_start(args: argparse.Namespace) -> None:
    """Start an AgentJob from the job file."""
    from workers.starters import DuplicateStart, start_agent_job
    from workflows.models.agent_job import AgentJobInput

    path = Path(args.file)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"job file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"job file {path} is not valid JSON: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read job file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"job file {path} must hold a JSON object, not {type(data).__name__}")
    data.setdefault("job_id", str(uuid.uuid4()))
    if args.org is not None:
        data["org_id"] = str(args.org)
    try:
        request = AgentJobInput.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CliError(f"invalid job in {path}: {where}: {err['msg']}") from None
    settings, pool, client = await operator_context()
    async with pool:
        try:
            handle = await start_agent_job(client, settings, request)
        except DuplicateStart as exc:
            raise CliError(f"{exc}: give {path} a new job_id, or none") from None
    emit(args, {"job_id": str(request.job_id), "workflow_id": handle.id}, f"started {handle.id}")


async def jobs_list(args: argparse.Namespace) -> None:
    """List recent jobs."""
    from db import jobs

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await jobs.list_jobs(conn, status=args.status, limit=args.limit, org_id=args.org)
    lines = [f"{r.id}  {r.status:<17} {r.title or ''}" for r in rows] or ["no jobs"]
    emit(args, rows, "\n".join(lines))


async def jobs_status(args: argparse.Namespace) -> None:
    """Show a job and its steps."""
    from db import jobs

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        if args.job_id == "latest":
            args.job_id = newest_id(await jobs.list_jobs(conn, limit=1), "no jobs yet")
        job = await get_or_fail(jobs.get_job(conn, args.job_id))
        steps = await jobs.list_steps(conn, args.job_id)
    text = [f"{job.id}  {job.status}  {job.title or ''}"]
    if job.error_message:
        text.append(f"reason: {job.error_message}")
    text += [f"  step {s.step_index + 1}: {s.status:<9} {s.description}" for s in steps]
    emit(
        args,
        {"job": job.model_dump(mode="json"), "steps": [s.model_dump(mode="json") for s in steps]},
        "\n".join(text),
    )


async def jobs_cancel(args: argparse.Namespace) -> None:
    """Request a job's cancellation."""
    from workers.starters import job_workflow_id

    job_id = str(args.job_id)
    await cancel_workflow(args, job_workflow_id(job_id), f"job {job_id}", {"job_id": job_id})
