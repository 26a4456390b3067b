"""`orchestrator threads`: seed 003's connected Threads accounts, their tokens kept fresh.

A short-lived token (from Threads' authorization) is exchanged for a long-lived one (60
days) with the app secret; a long-lived one is stored as it is. Either is encrypted like
users' API keys, and the account's refresh schedule is reconciled at once.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.cli.common import CliError, emit, operator_context

LONG_LIVED = timedelta(days=60)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _when(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def _long_lived(args: argparse.Namespace, settings: Any) -> tuple[str, datetime]:
    """The long-lived token to store and when it expires."""
    import httpx

    from activities.platform_tokens import TokenError, exchange_threads_token
    from workers.housekeeping import token_endpoints

    from_stdin = args.token == "-"  # noqa: S105 - "-": read from stdin, out of ps
    token = sys.stdin.readline().strip() if from_stdin else args.token
    if not token:
        raise CliError("empty token: pass --token TOKEN or --token - to read it from stdin")
    if not args.short_lived:
        return token, args.expires_at or datetime.now(UTC) + LONG_LIVED
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            issued = await exchange_threads_token(http, token_endpoints(settings), token)
        except TokenError as exc:
            raise CliError(f"Threads refused the token: {exc}") from None
    return issued.access_token, datetime.now(UTC) + (issued.expires_in or LONG_LIVED)


async def threads_add(args: argparse.Namespace) -> None:
    from psycopg import errors

    from activities.housekeeping_schedules import reconcile_holder
    from activities.token_refresh import threads_context
    from db import tokens
    from workers.keys import credential_box

    settings, pool, client = await operator_context()
    token, expires_at = await _long_lived(args, settings)
    account_id = uuid.uuid4()
    sealed = credential_box(settings).encrypt(token, threads_context(account_id))
    async with pool:
        async with pool.connection() as conn:
            try:
                row = await tokens.insert_threads_account(
                    conn,
                    account_id=account_id,
                    user_id=args.user,
                    threads_user_id=args.threads_user_id,
                    username=args.username,
                    access_token=sealed,
                    expires_at=expires_at,
                )
            except errors.ForeignKeyViolation:
                raise CliError(f"no user with id {args.user}") from None
            except errors.UniqueViolation:
                raise CliError(
                    f"user {args.user} already connected Threads account "
                    f"{args.threads_user_id}: use `orchestrator threads reconnect`"
                ) from None
        change = await reconcile_holder(
            client, pool, settings.temporal_task_queue, "threads", row.id
        )
    data = {"account_id": str(row.id), "token_expires_at": expires_at.isoformat()}
    emit(args, data | {"schedule": change}, f"{row.id}  {row.label}, renewed before expiry")


async def threads_reconnect(args: argparse.Namespace) -> None:
    from activities.housekeeping_schedules import reconcile_holder
    from activities.token_refresh import threads_context
    from db import tokens
    from db.transitions import RowNotFound
    from workers.keys import credential_box

    settings, pool, client = await operator_context()
    token, expires_at = await _long_lived(args, settings)
    sealed = credential_box(settings).encrypt(token, threads_context(args.account_id))
    async with pool:
        async with pool.connection() as conn:
            try:
                await tokens.reconnect_threads(
                    conn, args.account_id, access_token=sealed, expires_at=expires_at
                )
            except RowNotFound:
                raise CliError(f"no Threads account with id {args.account_id}") from None
        change = await reconcile_holder(
            client, pool, settings.temporal_task_queue, "threads", args.account_id
        )
    data = {"account_id": str(args.account_id), "schedule": change}
    emit(args, data, f"{args.account_id}: reconnected (schedule {change})")


async def threads_list(args: argparse.Namespace) -> None:
    from db import tokens

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await tokens.list_threads_accounts(conn)
    data = [r.model_dump(mode="json", exclude={"access_token"}) for r in rows]
    lines = [
        f"{r.id}  {r.credentials_status:<8} {r.label}  expires {r.token_expires_at or 'never'}"
        + (f"  ({r.credentials_error})" if r.credentials_error else "")
        for r in rows
    ] or ["no Threads accounts"]
    emit(args, data, "\n".join(lines))


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", required=True, help="the token; '-' reads it from stdin")
    parser.add_argument(
        "--short-lived",
        action="store_true",
        help="the token is short-lived (1 hour): exchange it for a long-lived one first",
    )
    parser.add_argument(
        "--expires-at",
        type=_when,
        help="when a long-lived token expires (ISO 8601; default: 60 days from now)",
    )


def add_commands(sub: Any) -> None:
    """Add the ``threads`` command group."""
    threads = sub.add_parser("threads", help="Threads accounts whose tokens are kept fresh")
    threads_sub = threads.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = threads_sub.add_parser("add", help="store an account's token (encrypted), renewed")
    add.add_argument("--user", required=True, type=_uuid, help="the owner's user id")
    add.add_argument("--threads-user-id", required=True, help="the Threads numeric user id")
    add.add_argument("--username", default="", help="the @handle, for operators")
    _token_arguments(add)
    add.set_defaults(run=threads_add)
    again = threads_sub.add_parser(
        "reconnect", help="a new token for an account; resumes its paused refreshes"
    )
    again.add_argument("account_id", type=_uuid, help="the threads_accounts id")
    _token_arguments(again)
    again.set_defaults(run=threads_reconnect)
    threads_sub.add_parser("list", help="every Threads account").set_defaults(run=threads_list)
