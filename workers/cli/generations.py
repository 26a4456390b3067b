"""`orchestrator generations`: start, list, follow and cancel Higgsfield generations."""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

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
    """Add the ``generations`` command group."""
    gen = sub.add_parser("generations", help="start and follow Higgsfield generations")
    gen_sub = gen.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = gen_sub.add_parser("start", help="start a generation")
    start.add_argument("--user", required=True, type=uuid_arg, help="the user (profiles.id)")
    start.add_argument("--prompt", help="the prompt text")
    start.add_argument("--prompt-id", type=uuid_arg, help="a stored prompt (prompts.id)")
    start.add_argument("--model", default="soul", help="Higgsfield model (default: soul)")
    start.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="a generation setting, e.g. quality='\"high\"' (repeatable)",
    )
    start.set_defaults(run=generations_start)
    lst = gen_sub.add_parser("list", help="recent generations")
    lst.add_argument("--status", help="only generations with this status")
    lst.add_argument("--user", type=uuid_arg, help="only this user's")
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    lst.set_defaults(run=generations_list)
    status = gen_sub.add_parser("status", help="one generation")
    status.add_argument("generation_id", type=uuid_arg, help="a generation id, or 'latest'")
    status.set_defaults(run=generations_status)
    cancel = gen_sub.add_parser("cancel", help="cancel (possible on Higgsfield while queued)")
    cancel.add_argument("generation_id", type=uuid_arg, help="a generation id")
    cancel.set_defaults(run=generations_cancel)


def _settings_pairs(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--setting {pair!r} is not KEY=VALUE")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


async def generations_start(args: argparse.Namespace) -> None:
    """Start a Generation workflow."""
    from pydantic import ValidationError

    from workers.starters import DuplicateStart, start_generation
    from workflows.models.generation import GenerationInput

    settings, pool, client = await operator_context()
    try:
        request = GenerationInput(
            generation_id=uuid.uuid4(),
            user_id=args.user,
            prompt_id=args.prompt_id,
            prompt_text=args.prompt,
            model=args.model,
            settings=_settings_pairs(args.setting),
            deadline=settings.generation_deadline,
        )
    except ValidationError as exc:
        raise CliError(f"invalid generation: {exc.errors()[0]['msg']}") from None
    async with pool:
        try:
            handle = await start_generation(client, settings, request)
        except DuplicateStart as exc:
            raise CliError(str(exc)) from None
    emit(
        args,
        {"generation_id": str(request.generation_id), "workflow_id": handle.id},
        f"started {handle.id}",
    )


async def generations_list(args: argparse.Namespace) -> None:
    """List generations."""
    from db import generations

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await generations.list_generations(
            conn, status=args.status, user_id=args.user, limit=args.limit
        )
    lines = [f"{r.id}  {r.status:<11} {r.prompt_text[:60]}" for r in rows] or ["no generations"]
    emit(args, rows, "\n".join(lines))


async def generations_status(args: argparse.Namespace) -> None:
    """Show one generation."""
    from db import generations

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        if args.generation_id == "latest":
            newest = await generations.list_generations(conn, limit=1)
            args.generation_id = newest_id(newest, "no generations yet")
        row = await get_or_fail(generations.get_generation(conn, args.generation_id))
    emit(args, row, "\n".join(f"{k}: {v}" for k, v in row.model_dump(mode="json").items()))


async def generations_cancel(args: argparse.Namespace) -> None:
    """Request cancellation of a generation's workflow."""
    gid = str(args.generation_id)
    await cancel_workflow(args, f"generation-{gid}", f"generation {gid}", {"generation_id": gid})
