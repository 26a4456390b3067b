"""Housekeeping (issue 28): holders of renewing tokens, seed 002's tables for retention."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from datetime import datetime
from typing import Any

import pytest

from activities.metric_sync import credentials_context
from activities.token_refresh import threads_context
from db import metrics, tokens
from db.metrics import ConnectionRow, Platform
from db.tokens import ThreadsAccountRow
from tests.db.factories import insert_user
from tests.harness import Stack
from tests.supabase.seeds import HERE
from workers.keys import credential_box


async def add_owner(stack: Stack, email: str | None = None) -> uuid.UUID:
    """A user with a profile (the owner who is told when credentials stop working)."""
    async with stack.pool.connection() as conn:
        return await insert_user(conn, email)  # type: ignore[arg-type]


async def add_renewing_connection(
    stack: Stack,
    *,
    platform: Platform = "meta",
    account_id: str = "1234567",
    secret: dict[str, str],
    expires_at: datetime | None,
    owner: uuid.UUID | None = None,
    frequency: int = 60,
) -> ConnectionRow:
    """A connection whose secret (access or refresh token) is encrypted as the CLI stores it,
    with the stored token's expiry."""
    connection_id = uuid.uuid4()
    sealed = credential_box(stack.settings).encrypt(
        json.dumps(secret), credentials_context(connection_id)
    )
    async with stack.pool.connection() as conn:
        await metrics.insert_connection(
            conn,
            connection_id=connection_id,
            platform=platform,
            credentials={"ciphertext": sealed},
            account_id=account_id,
            account_name="Renewing account",
            sync_frequency=frequency,
            created_by=owner,
        )
        await tokens.reconnect_connection(
            conn, connection_id, ciphertext=sealed, expires_at=expires_at
        )
        return await metrics.get_connection(conn, connection_id)


async def add_threads_account(
    stack: Stack, owner: uuid.UUID, token: str, expires_at: datetime
) -> ThreadsAccountRow:
    """A Threads account with its token encrypted as the CLI stores it."""
    account_id = uuid.uuid4()
    sealed = credential_box(stack.settings).encrypt(token, threads_context(account_id))
    async with stack.pool.connection() as conn:
        return await tokens.insert_threads_account(
            conn,
            account_id=account_id,
            user_id=owner,
            threads_user_id=str(uuid.uuid4().int)[:17],
            username="studio",
            access_token=sealed,
            expires_at=expires_at,
        )


async def stored_connection_secret(stack: Stack, connection_id: uuid.UUID) -> dict[str, str]:
    """The decrypted secret of a connection (tests only)."""
    row = await stack.fetchrow(
        "SELECT credentials->>'ciphertext' AS c FROM platform_connections WHERE id = %s",
        connection_id,
    )
    assert row is not None
    box = credential_box(stack.settings)
    return dict(json.loads(box.decrypt(row["c"], credentials_context(connection_id))))


def seed_002_table(name: str) -> str:
    """One table of seed 002's DDL (tests/supabase/seeds/), with its indexes."""
    text = "".join((HERE / f).read_text() for f in ("seed_002_housekeeping.sql", "seed_002.sql"))
    table = re.search(rf"CREATE TABLE public\.{name} \(.*?\n\);\n", text, re.S)
    assert table, name
    indexes = re.findall(rf"CREATE INDEX \w+ ON public\.{name}\b[^;]*;", text)
    return table.group(0) + "\n".join(indexes)


def _parser() -> argparse.ArgumentParser:
    from workers.cli import syncs, threads

    parser = argparse.ArgumentParser(prog="orchestrator")
    parser.add_argument("--json", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (syncs, threads):
        module.add_commands(commands)
    return parser


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run ``orchestrator --json <argv>`` (the metric-sync and Threads commands) and parse
    its output."""
    args = _parser().parse_args(["--json", *argv])
    await args.run(args)
    return json.loads(capsys.readouterr().out)


def operator_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its settings from the environment: the stack's."""
    settings = stack.settings
    assert settings.database_url and settings.encryption_master_key
    env = {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "ENCRYPTION_MASTER_KEY": settings.encryption_master_key.get_secret_value(),
        "ORCHESTRATOR_HOME": "/nonexistent-orchestrator-home",
        "META_GRAPH_URL": str(settings.meta_graph_url),
        "META_APP_ID": settings.meta_app_id or "",
        "META_APP_SECRET": settings.meta_app_secret.get_secret_value()
        if settings.meta_app_secret
        else "",
        "GOOGLE_OAUTH_URL": str(settings.google_oauth_url),
        "GOOGLE_OAUTH_CLIENT_ID": settings.google_oauth_client_id or "",
        "GOOGLE_OAUTH_CLIENT_SECRET": settings.google_oauth_client_secret.get_secret_value()
        if settings.google_oauth_client_secret
        else "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
