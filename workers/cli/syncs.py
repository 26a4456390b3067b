"""`orchestrator connections|schedules|syncs`: ad-platform connections and their metric syncs.

Registered on the root parser by ``add_commands``; errors are one line (``CliError``) and
``--json`` prints machine-readable output, as for every other command.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import date
from typing import Any

from workers.cli.common import CliError, emit, operator_context

CONNECTION_ID_HELP = "the platform_connections id"


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.removeprefix("metric-sync-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _minutes(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes >= 1: {value!r}")
    return int(value)


def _customer_id(value: str) -> str:
    """A Google Ads customer id, with or without dashes (123-456-7890)."""
    digits = value.replace("-", "")
    if not (digits.isdigit() and len(digits) == 10):
        raise argparse.ArgumentTypeError(f"not a Google Ads customer id (10 digits): {value!r}")
    return digits


def _token(value: str) -> str:
    """The token argument, or the first line of stdin for ``-`` (keeps it out of ps)."""
    return sys.stdin.readline().strip() if value == "-" else value


# --- connections ------------------------------------------------------------------------


async def _secret(args: argparse.Namespace, settings: Any) -> tuple[dict[str, str], Any]:
    """The secret to store (access token, or Google refresh token) and when the access
    token expires: a Meta user token is exchanged for a long-lived one (known expiry) when
    the worker has the Meta app's credentials; a Google refresh token is tried once."""
    from datetime import UTC, datetime

    import httpx

    from activities.platform_tokens import (
        TokenError,
        exchange_meta_token,
        mint_google_access_token,
    )
    from workers.housekeeping import token_endpoints

    if args.refresh_token is not None and args.platform != "google_ads":
        raise CliError("--refresh-token is for Google Ads connections only")
    if args.system_user and args.platform != "meta":
        raise CliError("--system-user is for Meta connections only")
    value = _token(args.refresh_token if args.refresh_token is not None else args.token)
    if not value:
        raise CliError("empty token: pass the token, or - to read it from stdin")
    endpoints = token_endpoints(settings)
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            if args.refresh_token is not None:
                await mint_google_access_token(http, endpoints, value)  # the grant works
                return {"refresh_token": value}, None
            if args.platform == "meta" and not args.system_user and endpoints.meta_app_secret:
                issued = await exchange_meta_token(http, endpoints, value)
                expires = datetime.now(UTC) + issued.expires_in if issued.expires_in else None
                return {"access_token": issued.access_token}, expires
        except TokenError as exc:
            raise CliError(f"the platform refused the credentials: {exc}") from None
    return {"access_token": value}, None


async def connections_add(args: argparse.Namespace) -> None:
    from psycopg import errors

    from activities.housekeeping_schedules import reconcile_holder
    from activities.metric_schedules import reconcile_connection
    from activities.metric_sync import credentials_context
    from db import metrics, tokens
    from workers.keys import credential_box

    if args.login_customer_id and args.platform != "google_ads":
        raise CliError("--login-customer-id is for Google Ads connections only")
    settings, pool, client = await operator_context()
    secret, expires_at = await _secret(args, settings)
    box = credential_box(settings)
    connection_id = uuid.uuid4()
    ciphertext = box.encrypt(json.dumps(secret), credentials_context(connection_id))
    async with pool:
        async with pool.connection() as conn, conn.transaction():
            try:
                row = await metrics.insert_connection(
                    conn,
                    connection_id=connection_id,
                    platform=args.platform,
                    credentials={"ciphertext": ciphertext},
                    account_id=args.account_id,
                    account_name=args.account_name,
                    sync_frequency=args.frequency,
                    created_by=args.created_by,
                    login_customer_id=args.login_customer_id,
                )
            except errors.ForeignKeyViolation:
                raise CliError(f"no profile with id {args.created_by}") from None
            if expires_at is not None:
                await tokens.reconnect_connection(
                    conn, row.id, ciphertext=ciphertext, expires_at=expires_at
                )
        change = await reconcile_connection(client, row, settings.temporal_task_queue)
        refresh = await reconcile_holder(
            client, pool, settings.temporal_task_queue, "connection", row.id
        )
    data = {
        "connection_id": str(row.id),
        "schedule": f"metric-sync-{row.id}",
        "change": change,
        "token_expires_at": expires_at.isoformat() if expires_at else None,
        "token_refresh": refresh,
    }
    renews = f"; token renewed before {expires_at:%Y-%m-%d}" if expires_at else ""
    emit(args, data, f"{row.id}  {row.label}, every {row.sync_frequency} min ({change}){renews}")


async def connections_reconnect(args: argparse.Namespace) -> None:
    from activities.housekeeping_schedules import reconcile_holder
    from activities.metric_schedules import reconcile_connection
    from activities.metric_sync import credentials_context
    from db import metrics, tokens
    from db.transitions import RowNotFound
    from workers.keys import credential_box

    settings, pool, client = await operator_context()
    async with pool:
        async with pool.connection() as conn:
            try:
                row = await metrics.get_connection(conn, args.connection_id)
            except RowNotFound:
                raise CliError(f"no connection with id {args.connection_id}") from None
        args.platform = row.platform
        secret, expires_at = await _secret(args, settings)
        ciphertext = credential_box(settings).encrypt(
            json.dumps(secret), credentials_context(row.id)
        )
        async with pool.connection() as conn:
            await tokens.reconnect_connection(
                conn, row.id, ciphertext=ciphertext, expires_at=expires_at
            )
            row = await metrics.get_connection(conn, row.id)
        change = await reconcile_connection(client, row, settings.temporal_task_queue)
        refresh = await reconcile_holder(
            client, pool, settings.temporal_task_queue, "connection", row.id
        )
    data = {"connection_id": str(row.id), "schedule": change, "token_refresh": refresh}
    emit(args, data, f"{row.id}  {row.label}: reconnected (schedule {change})")


async def connections_list(args: argparse.Namespace) -> None:
    from db import metrics

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await metrics.list_connections(conn)
    data = [r.model_dump(mode="json", exclude={"credentials"}) for r in rows]
    lines = [
        f"{r.id}  {'active' if r.is_active else 'inactive':<8} every {r.sync_frequency:>5} min  "
        f"{r.label}  last synced {r.last_synced_at or 'never'}"
        for r in rows
    ] or ["no connections"]
    emit(args, data, "\n".join(lines))


# --- schedules --------------------------------------------------------------------------


async def schedules_reconcile(args: argparse.Namespace) -> None:
    from activities.housekeeping_schedules import reconcile_housekeeping
    from activities.metric_schedules import ensure_reconcile_schedule, reconcile_schedules

    settings, pool, client = await operator_context()
    async with pool:
        result = await reconcile_schedules(client, pool, settings.temporal_task_queue)
        housekeeping = await reconcile_housekeeping(client, pool, settings.temporal_task_queue)
    reconciler = await ensure_reconcile_schedule(client, settings.temporal_task_queue)
    data = result.model_dump(mode="json") | {
        "reconcile_schedule": reconciler,
        "housekeeping": housekeeping.model_dump(mode="json"),
    }
    notes = "".join(f"\nnote: {n}" for n in housekeeping.notes)
    emit(
        args,
        data,
        f"metric syncs: {result.summary()}; housekeeping: {housekeeping.summary()}; "
        f"metric-sync-reconcile {reconciler}{notes}",
    )


# --- syncs ------------------------------------------------------------------------------


async def syncs_trigger(args: argparse.Namespace) -> None:
    from activities.metric_schedules import ScheduleMissing, schedule_id, trigger_sync

    _, pool, client = await operator_context()
    async with pool:
        try:
            await trigger_sync(client, args.connection_id)
        except ScheduleMissing as exc:
            raise CliError(str(exc)) from None
    sid = schedule_id(args.connection_id)
    emit(args, {"schedule": sid, "triggered": True}, f"triggered {sid}")


async def syncs_backfill(args: argparse.Namespace) -> None:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from activities.metric_schedules import start_backfill
    from db.transitions import RowNotFound

    if args.until < args.since:
        raise CliError(f"--until {args.until} is before --since {args.since}")
    settings, pool, client = await operator_context()
    async with pool:
        try:
            handle = await start_backfill(
                client,
                pool,
                settings.temporal_task_queue,
                args.connection_id,
                args.since,
                args.until,
            )
        except RowNotFound:
            raise CliError(f"no connection with id {args.connection_id}") from None
        except WorkflowAlreadyStartedError:
            raise CliError(
                f"a backfill of {args.connection_id} for {args.since}..{args.until} is already "
                "running; wait for it or pick another window"
            ) from None
    if not args.wait:
        emit(args, {"workflow_id": handle.id}, f"started {handle.id}")
        return
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        raise CliError(f"{handle.id} failed: {getattr(cause, 'message', cause)}") from None
    text = (
        f"{handle.id}: {result.status}, {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.failed_pages} failed pages"
    )
    emit(args, result.model_dump(mode="json") | {"workflow_id": handle.id}, text)


async def syncs_list(args: argparse.Namespace) -> None:
    from db import metrics

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await metrics.list_sync_logs(conn, connection_id=args.connection, limit=args.limit)
    lines = [
        f"{r.id}  {r.status:<8} {r.platform_connection_id}  "
        f"{r.window_start:%Y-%m-%d}..{r.window_end:%Y-%m-%d}  "
        f"{r.metrics_created} created  {r.metrics_updated} updated"
        + (f"  {r.error_message}" if r.error_message else "")
        for r in rows
    ] or ["no syncs"]
    emit(args, rows, "\n".join(lines))


def _credential_arguments(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--token", help="access token; '-' reads it from stdin")
    secret.add_argument(
        "--refresh-token",
        help="Google Ads: the OAuth refresh token (access tokens are minted from it); "
        "'-' reads it from stdin",
    )
    parser.add_argument(
        "--system-user",
        action="store_true",
        help="Meta: a system user's token, which never expires (not exchanged or renewed)",
    )


def add_commands(sub: Any) -> None:
    """Add the ``connections``, ``schedules`` and ``syncs`` command groups."""
    conns = sub.add_parser("connections", help="ad-platform connections (Meta, Google Ads)")
    conns_sub = conns.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = conns_sub.add_parser("add", help="store a connection (token encrypted) and schedule it")
    add.add_argument(
        "--platform", required=True, choices=["meta", "google_ads"], help="the ad platform"
    )
    add.add_argument("--account-id", required=True, help="ad account (Meta) or customer id")
    add.add_argument("--account-name", help="how operators recognise the account")
    _credential_arguments(add)
    add.add_argument(
        "--login-customer-id",
        type=_customer_id,
        help="Google Ads: the manager account the customer is reached through",
    )
    add.add_argument("--frequency", type=_minutes, default=1440, help="minutes between syncs")
    add.add_argument("--created-by", type=_uuid, help="profile id of the connecting user")
    add.set_defaults(run=connections_add)
    conns_sub.add_parser("list", help="every connection").set_defaults(run=connections_list)
    again = conns_sub.add_parser(
        "reconnect", help="new credentials for a connection; resumes its paused schedules"
    )
    again.add_argument("connection_id", type=_uuid, help=CONNECTION_ID_HELP)
    _credential_arguments(again)
    again.set_defaults(run=connections_reconnect)

    sched = sub.add_parser("schedules", help="metric-sync and housekeeping schedules")
    sched_sub = sched.add_subparsers(dest="action", required=True, metavar="ACTION")
    sched_sub.add_parser(
        "reconcile",
        help="make the schedules match platform_connections, threads_accounts, "
        "retention_policies and dashboard_refreshes (and keep them so)",
    ).set_defaults(run=schedules_reconcile)

    syncs = sub.add_parser("syncs", help="run and follow metric syncs")
    syncs_sub = syncs.add_subparsers(dest="action", required=True, metavar="ACTION")
    trigger = syncs_sub.add_parser("trigger", help="run a connection's scheduled sync now")
    trigger.add_argument("connection_id", type=_uuid, help=CONNECTION_ID_HELP)
    trigger.set_defaults(run=syncs_trigger)
    backfill = syncs_sub.add_parser("backfill", help="sync an explicit date range")
    backfill.add_argument("connection_id", type=_uuid, help=CONNECTION_ID_HELP)
    backfill.add_argument("--since", required=True, type=_day, help="first day (YYYY-MM-DD)")
    backfill.add_argument("--until", required=True, type=_day, help="last day (YYYY-MM-DD)")
    backfill.add_argument("--wait", action="store_true", help="wait and print the result")
    backfill.set_defaults(run=syncs_backfill)
    lst = syncs_sub.add_parser("list", help="recent sync logs")
    lst.add_argument("--connection", type=_uuid, help="only this connection's syncs")
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    lst.set_defaults(run=syncs_list)
