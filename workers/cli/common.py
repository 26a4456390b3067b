"""What every ``orchestrator`` command shares: one-line errors, output (``--json``), id
arguments and ``latest``, and the settings, pool and client an operator command opens.

The command modules import this module; it imports none of them (nor ``workers.cli``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any, NoReturn

from pydantic import BaseModel

from workers.settings import load_settings

DEV_EXTRA = "orchestrator dev needs the dev extra: pip install 'agency-orchestrator[dev]'"


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else ``text``."""
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


def newest_id(rows: Sequence[Any], none_yet: str) -> uuid.UUID:
    """What ``latest`` names: the id of the first of ``rows`` (listed newest first);
    ``none_yet`` is the error when there is none."""
    if not rows:
        raise CliError(none_yet)
    newest: uuid.UUID = rows[0].id
    return newest


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
    """Use the dev stack's generated secrets when operating on the local stack (one runs,
    or ran, here: its package is installed)."""
    from workers.runtime_file import runtime_path

    if runtime_path().exists():
        from devstack.dev_secrets import apply_dev_secrets

        apply_dev_secrets(runtime_path().parent)


async def get_or_fail(coro: Awaitable[Any]) -> Any:
    """The row ``coro`` reads; a missing row is a one-line error."""
    from db.transitions import RowNotFound

    try:
        return await coro
    except RowNotFound as exc:
        raise CliError(str(exc)) from None


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


def exit_without_teardown(status: int) -> NoReturn:
    """Exit without interpreter teardown (every command, the long-running processes once
    they have shut down cleanly): the Temporal client's runtime threads can abort a
    finalizing interpreter (SIGABRT instead of the status; temporalio/sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
