"""`orchestrator keys`: store users' API keys (encrypted at rest) and re-encrypt stored
credentials after a master-key rotation."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from workers.cli.common import (
    CliError,
    apply_dev_secrets_if_local,
    emit,
    operator_context,
    uuid_arg,
)
from workers.settings import load_settings


def add_commands(sub: Any) -> None:
    """Add the ``keys`` command group."""
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
    keys_sub.add_parser(
        "rotate", help="re-encrypt stored credentials under the current ENCRYPTION_MASTER_KEY"
    ).set_defaults(run=keys_rotate)


async def keys_set(args: argparse.Namespace) -> None:
    """Encrypt and store a user's API key, read from stdin (never from the command line)."""
    from activities.higgsfield import key_context
    from db.generations import store_user_api_key
    from workers.keys import credential_box

    key = getpass.getpass("key: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not key:
        raise CliError("no key given on stdin")
    settings, pool, _ = await operator_context()
    box = credential_box(settings)
    async with pool, pool.connection() as conn:
        sealed = box.encrypt(key, key_context(args.user, args.service))
        await store_user_api_key(conn, args.user, args.service, sealed)
    emit(
        args,
        {"user_id": str(args.user), "service": args.service, "stored": True},
        f"{args.service} key stored for {args.user}",
    )


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
