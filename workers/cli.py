"""`orchestrator`: run the processes and operate jobs and approvals from a terminal.

Errors are one line on stderr with a non-zero exit; ``--json`` prints machine-readable
output for scripting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from workers.settings import SettingsError, load_settings


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        elif isinstance(data, list):
            data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def uuid_arg(value: str) -> uuid.UUID | str:
    """A UUID argument (a ``job-`` prefix is accepted); ``latest`` names the newest one."""
    if value == "latest":
        return value
    try:
        return uuid.UUID(value.removeprefix("job-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


async def operator_context() -> tuple[Any, Any, Any]:
    """Settings, a connection pool and a Temporal client for operator commands."""
    from db.pool import open_pool
    from workers.runtime_file import apply_runtime
    from workers.temporal import connect_client

    apply_runtime()
    apply_dev_secrets_if_local()
    settings = load_settings()
    settings.require("database_url")
    assert settings.database_url is not None
    pool = await open_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    client = await connect_client(settings)
    return settings, pool, client


def apply_dev_secrets_if_local() -> None:
    """Use the dev stack's generated secrets when operating on the local stack."""
    from workers.dev_secrets import apply_dev_secrets
    from workers.runtime_file import runtime_path

    if runtime_path().exists():
        apply_dev_secrets(runtime_path().parent)


# --- jobs -------------------------------------------------------------------------------


async def jobs_start(args: argparse.Namespace) -> None:
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
    from db import jobs

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await jobs.list_jobs(conn, status=args.status, limit=args.limit)
    lines = [f"{r.id}  {r.status:<17} {r.title or ''}" for r in rows] or ["no jobs"]
    emit(args, rows, "\n".join(lines))


async def jobs_status(args: argparse.Namespace) -> None:
    from db import jobs

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        if args.job_id == "latest":
            newest = await jobs.list_jobs(conn, limit=1)
            if not newest:
                raise CliError("no jobs yet")
            args.job_id = newest[0].id
        job = await get_or_fail(jobs.get_job(conn, args.job_id))
        rows = await (await conn.execute(jobs.Q["list_steps"], {"job_id": args.job_id})).fetchall()
    steps = [jobs.JobStepRow.model_validate(r) for r in rows]
    text = [f"{job.id}  {job.status}  {job.title or ''}"]
    if job.error_message:
        text.append(f"reason: {job.error_message}")
    text += [f"  step {s.step_index + 1}: {s.status:<9} {s.description}" for s in steps]
    emit(
        args,
        {"job": job.model_dump(mode="json"), "steps": [s.model_dump(mode="json") for s in steps]},
        "\n".join(text),
    )


async def cancel_workflow(
    args: argparse.Namespace, workflow_id: str, what: str, ids: dict[str, str]
) -> None:
    """Request cancellation of a workflow; the workflow cleans up and records its end."""
    from temporalio.service import RPCError

    _, pool, client = await operator_context()
    async with pool:
        try:
            await client.get_workflow_handle(workflow_id).cancel()
        except RPCError as exc:
            raise CliError(f"cannot cancel {what}: {exc.message}") from None
    emit(args, {**ids, "cancel_requested": True}, "cancellation requested")


async def jobs_cancel(args: argparse.Namespace) -> None:
    from workers.starters import job_workflow_id

    job_id = str(args.job_id)
    await cancel_workflow(args, job_workflow_id(job_id), f"job {job_id}", {"job_id": job_id})


# --- approvals --------------------------------------------------------------------------


async def approvals_list(args: argparse.Namespace) -> None:
    from db import approvals

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await approvals.list_approvals(conn, status=args.status, limit=args.limit)
    lines = [
        f"{r.id}  {r.status:<9} job {r.job_id}  {r.action_type}: {r.description}" for r in rows
    ] or ["no approvals"]
    emit(args, rows, "\n".join(lines))


async def approvals_show(args: argparse.Namespace) -> None:
    from db import approvals

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        row = await get_or_fail(approvals.get_approval(conn, await _approval_id(conn, args)))
    text = "\n".join(f"{k}: {v}" for k, v in row.model_dump(mode="json").items())
    emit(args, row, text)


async def approvals_decide(args: argparse.Namespace) -> None:
    from activities.decisions import deliver_decision
    from db import approvals

    _, pool, client = await operator_context()
    async with pool:
        async with pool.connection() as conn:
            row = await get_or_fail(approvals.get_approval(conn, await _approval_id(conn, args)))
        outcome = await deliver_decision(
            client,
            row,
            decision=args.decision,
            decided_by=args.by,
            channel="cli",
            note=args.note,
            update_id=f"cli-{uuid.uuid4()}",
        )
    if not outcome.applied:
        raise CliError(outcome.message)
    emit(args, outcome, outcome.message)


async def _approval_id(conn: Any, args: argparse.Namespace) -> uuid.UUID:
    """The approval named on the command line; ``latest``: the newest pending one."""
    from db import approvals

    if args.approval_id != "latest":
        return uuid.UUID(str(args.approval_id))
    pending = await approvals.list_approvals(conn, status="pending", limit=1)
    if not pending:
        raise CliError("no pending approvals")
    return pending[0].id


async def get_or_fail(coro: Awaitable[Any]) -> Any:
    from db.transitions import RowNotFound

    try:
        return await coro
    except RowNotFound as exc:
        raise CliError(str(exc)) from None


# --- processes --------------------------------------------------------------------------


async def migrate_cmd(args: argparse.Namespace) -> None:
    from db.migrate import MigrationError, plan, run_migrations

    settings = load_settings()
    settings.require("database_url")
    url = settings.migration_url
    assert url is not None
    try:
        report = await (plan(url) if args.plan else run_migrations(url))
    except MigrationError as exc:
        raise CliError(str(exc)) from None
    verb = "would apply" if args.plan else "applied"
    lines = [f"{verb} {name}" for name in report.applied] or ["database is up to date"]
    lines += report.changes + [f"note: {note}" for note in report.notes]
    emit(
        args,
        {
            "plan": args.plan,
            "applied": report.applied,
            "changes": report.changes,
            "notes": report.notes,
        },
        "\n".join(lines),
    )


async def search_attributes_register(args: argparse.Namespace) -> None:
    from workers.temporal import connect_client, register_search_attributes

    settings = load_settings()
    client = await connect_client(settings)
    added = await register_search_attributes(client, client.namespace)
    emit(args, {"added": added}, "\n".join(added) or "all search attributes present")


async def keys_rotate(args: argparse.Namespace) -> None:
    """Re-encrypt stored credentials under the current key id (idempotent, resumable)."""
    from db.pool import open_pool
    from workers.key_rotation import rotate_credentials
    from workers.keys import Keyring
    from workers.runtime_file import apply_runtime

    apply_runtime()  # the database of a running `orchestrator dev`, if any
    apply_dev_secrets_if_local()
    settings = load_settings()
    settings.require("database_url")
    assert settings.database_url is not None
    keyring = Keyring.from_settings(settings)
    pool = await open_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    async with pool:
        results = await rotate_credentials(pool, keyring.credential_box())
    lines = [f"current key id: {keyring.current.kid}"] + [
        f"{r.table}: {r.reencrypted} re-encrypted, {r.already_current} already current, "
        f"{r.changed_meanwhile} changed meanwhile, {len(r.unreadable)} unreadable"
        for r in results
    ]
    tables = [r.model_dump() for r in results]
    emit(args, {"key_id": keyring.current.kid, "tables": tables}, "\n".join(lines))
    unreadable = [place for r in results for place in r.unreadable]
    if unreadable:
        raise CliError(f"{len(unreadable)} credentials could not be read: {'; '.join(unreadable)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Durable agent jobs, approval gates, generations and metric syncs on "
        "Temporal. Settings come from the environment (see README).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripting")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("dev", help="run the whole stack locally (embedded Postgres and Temporal)")
    sub.add_parser("worker", help="run the Temporal worker")
    sub.add_parser("ingress", help="run the HTTP ingress (webhooks, approval links)")
    mig = sub.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument(
        "--plan",
        action="store_true",
        help="print what the migrations would change in the schema, and apply nothing",
    )
    mig.set_defaults(run=migrate_cmd)
    sa = sub.add_parser("search-attributes", help="manage Temporal search attributes")
    sa_sub = sa.add_subparsers(dest="action", required=True, metavar="ACTION")
    sa_sub.add_parser("register", help="add the project's search attributes").set_defaults(
        run=search_attributes_register
    )

    jobs = sub.add_parser("jobs", help="start and follow agent jobs")
    jobs_sub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = jobs_sub.add_parser("start", help="start a job from a JSON file")
    start.add_argument("--file", required=True, help="job JSON (an example: workers/demo-job.json)")
    start.set_defaults(run=jobs_start)
    lst = jobs_sub.add_parser("list", help="recent jobs")
    lst.add_argument("--status", help="only jobs with this status")
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    lst.set_defaults(run=jobs_list)
    status = jobs_sub.add_parser("status", help="a job and its steps")
    status.add_argument("job_id", type=uuid_arg, help="a job id, or 'latest'")
    status.set_defaults(run=jobs_status)
    cancel = jobs_sub.add_parser("cancel", help="cancel a job (its browser session is released)")
    cancel.add_argument("job_id", type=uuid_arg, help="a job id")
    cancel.set_defaults(run=jobs_cancel)

    appr = sub.add_parser("approvals", help="list and decide approval gates")
    appr_sub = appr.add_subparsers(dest="action", required=True, metavar="ACTION")
    alist = appr_sub.add_parser("list", help="approvals, pending first")
    alist.add_argument("--status", help="only approvals with this status")
    alist.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    alist.set_defaults(run=approvals_list)
    show = appr_sub.add_parser("show", help="one approval")
    show.add_argument("approval_id", type=uuid_arg, help="an approval id, or 'latest' pending")
    show.set_defaults(run=approvals_show)
    for decision in ("approve", "reject"):
        p = appr_sub.add_parser(decision, help=f"{decision} a pending approval")
        p.add_argument("approval_id", type=uuid_arg, help="an approval id, or 'latest' pending")
        p.add_argument("--by", required=True, help="who decides (recorded as decided_by)")
        p.add_argument("--note", help="why (recorded as the decision note)")
        p.set_defaults(run=approvals_decide, decision=decision)
    from workers.cli_generations import add_commands as add_generation_commands

    keys_sub = add_generation_commands(sub)  # `keys set` is the generations module's
    keys_sub.add_parser(
        "rotate", help="re-encrypt stored credentials under the current ENCRYPTION_MASTER_KEY"
    ).set_defaults(run=keys_rotate)
    from workers.cli_syncs import add_commands as add_sync_commands

    add_sync_commands(sub)
    from workers.cli_outbox import add_commands as add_outbox_commands

    add_outbox_commands(sub)
    from workers.health import add_commands as add_health_commands

    add_health_commands(sub)
    from workers.cli_app import add_commands as add_app_commands

    add_app_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``orchestrator``: run the command, exit with its status."""
    exit_without_teardown(run_command(argv))


def run_command(argv: list[str] | None = None) -> int:
    """Run one ``orchestrator`` command; its exit status."""
    args = _parser().parse_args(argv)
    if args.command == "dev":
        from workers.dev import main as dev_main

        dev_main()
        return 0
    if args.command == "worker":
        from workers.worker import main as worker_main

        worker_main()
        return 0
    if args.command == "ingress":
        from workers.processes import ingress_main

        ingress_main()
        return 0
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, None]] = args.run
    try:
        asyncio.run(run(args))
    except SettingsError as exc:
        print(f"orchestrator: {exc.code}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"orchestrator: cannot connect: {exc}", file=sys.stderr)
        return 1
    return 0


def exit_without_teardown(status: int) -> NoReturn:
    """Exit without interpreter teardown (every command, the long-running processes once
    they have shut down cleanly): the Temporal client's runtime threads can abort a
    finalizing interpreter (SIGABRT instead of the status; temporalio/sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    # `python -m workers.cli` runs this file as __main__; the command modules raise
    # workers.cli.CliError, so run main from that module or their errors escape it.
    from workers.cli import main as package_main

    package_main()
