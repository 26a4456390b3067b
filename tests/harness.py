"""A running system for a test: emulators, worker and ingress on this test's database."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from db.pool import Pool, open_pool
from devstack.emulators.google_oauth import DEV_CLIENT_ID as GOOGLE_CLIENT_ID
from devstack.emulators.google_oauth import DEV_CLIENT_SECRET as GOOGLE_CLIENT_SECRET
from devstack.emulators.meta import DEV_APP_ID as META_APP_ID
from devstack.emulators.meta import DEV_APP_SECRET as META_APP_SECRET
from devstack.emulators.runner import free_port
from devstack.emulators.server import EmulatorStack, start_emulators
from devstack.emulators.threads import DEV_APP_SECRET as THREADS_APP_SECRET
from tests.encryption import TEST_MASTER_KEY
from workers.processes import serving_ingress
from workers.settings import Settings, load_settings, settings_env
from workers.worker import build_worker, open_services


@dataclass
class Stack:
    """Everything a workflow test touches."""

    settings: Settings
    pool: Pool
    client: Client
    emulators: EmulatorStack
    ingress_url: str

    async def fetchrow(self, query: str, *params: Any) -> dict[str, Any] | None:
        """One row of a query on the test database."""
        async with self.pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchone()

    async def fetchall(self, query: str, *params: Any) -> list[dict[str, Any]]:
        """All rows of a query on the test database."""
        async with self.pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchall()


def stack_settings(
    db_url: str,
    task_queue: str,
    ingress_port: int,
    emulators_url: str,
    webhook_secret: str,
    **overrides: Any,
) -> Settings:
    """Settings for a test: emulator URLs, fresh secrets, no metrics endpoint."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "temporal_address": "127.0.0.1:0",  # the test's client is passed in directly
        "temporal_task_queue": task_queue,
        "ingress_port": ingress_port,
        "encryption_master_key": TEST_MASTER_KEY,  # the session client's (tests/encryption.py)
        "codec_auth_token": secrets.token_urlsafe(32),
        "resend_webhook_secret": webhook_secret,
        "resend_api_key": "re_test_key",
        "resend_api_url": f"{emulators_url}/resend",
        "steel_api_key": "steel_test_key",
        "steel_base_url": f"{emulators_url}/steel",
        "supermemory_api_key": "sm_test_key",
        "supermemory_base_url": f"{emulators_url}/supermemory",
        "higgsfield_base_url": f"{emulators_url}/higgsfield",
        "meta_graph_url": f"{emulators_url}/meta",
        "google_ads_url": f"{emulators_url}/google-ads",
        # Token endpoints and the emulated apps' credentials (issue 28).
        "google_oauth_url": f"{emulators_url}/google-oauth",
        "google_oauth_client_id": GOOGLE_CLIENT_ID,
        "google_oauth_client_secret": GOOGLE_CLIENT_SECRET,
        "meta_app_id": META_APP_ID,
        "meta_app_secret": META_APP_SECRET,
        "threads_graph_url": f"{emulators_url}/threads",
        "threads_app_secret": THREADS_APP_SECRET,
        "slack_api_url": f"{emulators_url}/slack/api/",
        "metrics_bind_address": None,
        "ingress_metrics_bind_address": None,  # no fixed port: tests run side by side
        "worker_graceful_shutdown_seconds": 2,
    }
    values.update(overrides)
    return load_settings(**values)


@asynccontextmanager
async def running_stack(
    db_url: str, client: Client, task_queue: str, *, worker: bool = True, **overrides: Any
) -> AsyncIterator[Stack]:
    """Start emulators, a worker on ``task_queue`` and the ingress; stop them after."""
    port = free_port()
    ingress_url = f"http://127.0.0.1:{port}"
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    emulators = start_emulators(
        resend_webhook_url=f"{ingress_url}/webhooks/resend", resend_webhook_secret=webhook_secret
    )
    settings = stack_settings(db_url, task_queue, port, emulators.url, webhook_secret, **overrides)
    pool = await open_pool(db_url, min_size=1, max_size=10)
    stack = Stack(settings, pool, client, emulators, ingress_url)
    try:
        async with serving_ingress(pool, client, settings, port=port):
            if worker:
                async with (
                    open_services(settings, pool) as services,
                    build_worker(client, settings, services),
                ):
                    yield stack
            else:
                yield stack
    finally:
        await pool.close()
        emulators.stop()


def start_worker_process(settings: Settings, temporal_address: str) -> subprocess.Popen[bytes]:
    """`orchestrator worker` in its own process (for crash tests)."""
    env = settings_env(settings) | {"TEMPORAL_ADDRESS": temporal_address, "LOG_LEVEL": "warning"}
    # No Prometheus endpoint (an empty address turns it off): a restarted worker would
    # otherwise race its predecessor for the default port.
    env["METRICS_BIND_ADDRESS"] = settings.metrics_bind_address or ""
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
