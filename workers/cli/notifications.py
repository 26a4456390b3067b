"""`orchestrator notifications`: where a user's notifications go, and how each went.

Secrets (a Slack webhook URL, a bot token) are read from stdin with ``-`` (kept out of
``ps`` and shell history) and stored encrypted; they are never printed.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any, get_args

from workers.cli.common import CliError, emit, operator_context


def _secret(value: str | None) -> str | None:
    """The argument, or the first line of stdin for ``-``."""
    return sys.stdin.readline().strip() if value == "-" else value


def _events(value: str) -> list[str]:
    from workflows.models.notification import EventType

    known = set(get_args(EventType))
    events = [e.strip() for e in value.split(",") if e.strip()]
    unknown = [e for e in events if e not in known] or ([] if events else [value])
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown event {unknown[0]!r}: choose among {', '.join(sorted(known))}"
        )
    return events


def add_commands(sub: Any) -> None:
    """Add the ``notifications`` command group."""
    group = sub.add_parser("notifications", help="notification channels and deliveries")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a channel for a user (or an organization)")
    add.add_argument("kind", choices=["email", "slack_webhook", "slack_bot"])
    owner = add.add_mutually_exclusive_group(required=True)
    owner.add_argument("--user", type=uuid.UUID, help="the user (profiles.id)")
    owner.add_argument("--org", type=uuid.UUID, help="the organization id")
    add.add_argument("--to", help="email: the address (default: the user's profile email)")
    add.add_argument(
        "--secret",
        help="slack_webhook: the webhook URL; slack_bot: the bot token; '-' reads stdin",
    )
    add.add_argument("--channel", help="slack_bot: the channel id (C0123...) or #name")
    add.add_argument("--events", type=_events, help="comma-separated (default: every event)")
    add.add_argument(
        "--per-minute", type=int, default=20, help="at most this many a minute (default 20)"
    )
    add.set_defaults(run=notifications_add)
    lst = actions.add_parser("list", help="deliveries, newest first (the dashboard's view)")
    lst.add_argument("--user", type=uuid.UUID, help="only this user's")
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    lst.set_defaults(run=notifications_list)


async def notifications_add(args: argparse.Namespace) -> None:
    """Store a channel, its secret encrypted."""
    from psycopg import errors

    from activities.notifications import store_channel
    from workers.keys import credential_box

    secret = _secret(args.secret)
    if args.kind == "email" and secret:
        raise CliError("an email channel takes --to, not --secret")
    if args.kind != "email" and not secret:
        raise CliError(f"a {args.kind} channel needs --secret (or --secret - to read stdin)")
    if args.kind == "slack_webhook" and not str(secret).startswith(("https://", "http://")):
        raise CliError("--secret must be the webhook's URL (https://hooks.slack.com/...)")
    if args.kind == "slack_bot" and not args.channel:
        raise CliError("a slack_bot channel needs --channel")
    if not 1 <= args.per_minute <= 600:
        raise CliError("--per-minute must be between 1 and 600")
    settings, pool, _ = await operator_context()
    async with pool:
        try:
            channel_id = await store_channel(
                pool,
                credential_box(settings),
                kind=args.kind,
                user_id=args.user,
                org_id=args.org,
                secret=secret,
                slack_channel=args.channel,
                email_to=args.to,
                events=args.events,
                per_minute=args.per_minute,
            )
        except errors.ForeignKeyViolation:
            raise CliError(f"no profile with id {args.user}") from None
    emit(args, {"channel_id": str(channel_id)}, f"added {args.kind} channel {channel_id}")


async def notifications_list(args: argparse.Namespace) -> None:
    """Print deliveries, newest first."""
    from db import notifications

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await notifications.list_deliveries(conn, user_id=args.user, limit=args.limit)
    lines = [
        f"{r.created_at:%Y-%m-%d %H:%M}  {r.event_type or '?':<31} {r.kind or '?':<13} "
        f"{r.outcome or 'pending':<8} {r.attempts}/{r.max_attempts}"
        + (f"  next {r.next_attempt_at:%H:%M:%S}" if r.next_attempt_at else "")
        + (f"  {r.last_error}" if r.last_error else "")
        for r in rows
    ] or ["no notifications"]
    emit(args, [r.model_dump(mode="json") for r in rows], "\n".join(lines))
