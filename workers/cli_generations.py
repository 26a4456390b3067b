"""CLI commands for Higgsfield generations and users' stored keys."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from typing import Any


def add_commands(sub: Any) -> Any:
    """Add the ``generations`` and ``keys`` command groups; returns the ``keys`` group's
    sub-commands, to which other modules add theirs."""
    from workers.cli import uuid_arg

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

    keys = sub.add_parser("keys", help="store users' API keys (encrypted at rest)")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    kset = keys_sub.add_parser("set", help="store a user's key for a service (read from stdin)")
    kset.add_argument("--user", required=True, type=uuid_arg, help="the user (profiles.id)")
    kset.add_argument(
        "--service",
        required=True,
        choices=["higgsfield", "elevenlabs", "wavespeed"],
        help="whose key it is",
    )
    kset.set_defaults(run=keys_set)
    return keys_sub


def _settings_pairs(pairs: list[str]) -> dict[str, Any]:
    from workers.cli import CliError

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

    from workers.cli import CliError, emit, operator_context
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
    from workers.cli import emit, operator_context

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
    from workers.cli import CliError, emit, get_or_fail, operator_context

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        if args.generation_id == "latest":
            newest = await generations.list_generations(conn, limit=1)
            if not newest:
                raise CliError("no generations yet")
            args.generation_id = newest[0].id
        row = await get_or_fail(generations.get_generation(conn, args.generation_id))
    emit(args, row, "\n".join(f"{k}: {v}" for k, v in row.model_dump(mode="json").items()))


async def generations_cancel(args: argparse.Namespace) -> None:
    """Request cancellation of a generation's workflow."""
    from workers.cli import cancel_workflow

    gid = str(args.generation_id)
    await cancel_workflow(args, f"generation-{gid}", f"generation {gid}", {"generation_id": gid})


async def keys_set(args: argparse.Namespace) -> None:
    """Encrypt and store a user's API key, read from stdin (never from the command line)."""
    from activities.higgsfield import key_context
    from db.generations import Q
    from workers.cli import CliError, emit, operator_context
    from workers.keys import credential_box

    key = getpass.getpass("key: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not key:
        raise CliError("no key given on stdin")
    settings, pool, _ = await operator_context()
    box = credential_box(settings)
    async with pool, pool.connection() as conn:
        await conn.execute(
            Q["upsert_user_api_key"],
            {
                "user_id": args.user,
                "service": args.service,
                "encrypted_api_key": box.encrypt(key, key_context(args.user, args.service)),
            },
        )
    emit(
        args,
        {"user_id": str(args.user), "service": args.service, "stored": True},
        f"{args.service} key stored for {args.user}",
    )
