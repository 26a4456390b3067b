"""Demo metric sync for `orchestrator dev`: a Meta connection of the demo user whose schedule
fires every few minutes against the Meta emulator, plus the reconcile schedule."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlparse

import httpx
from temporalio.client import Client

from activities.housekeeping_schedules import reconcile_housekeeping
from activities.metric_schedules import (
    ensure_reconcile_schedule,
    reconcile_connection,
    schedule_id,
    trigger_sync,
)
from activities.metric_sync import credentials_context
from db import metrics
from db.pool import Pool
from devstack.demo import DEMO_EMAIL, DEMO_USER_ID, SEED, SEED_PROFILE
from workers.keys import credential_box
from workers.settings import Settings

DEMO_CONNECTION_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")
DEMO_ACCOUNT_ID = "1000000001"
# Not a secret: the Meta emulator accepts any unexpired token.
DEMO_TOKEN = "EAAB-demo-emulator-token"  # noqa: S105
DEMO_FREQUENCY_MINUTES = 5
LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def seed_demo_connection(pool: Pool, client: Client, settings: Settings) -> str:
    """Create the demo Meta connection and its schedule (idempotent); returns the schedule id.

    On first creation the schedule is triggered once, so the first sync shows up at once.
    """
    await _configure_emulator(str(settings.meta_graph_url).rstrip("/"))
    box = credential_box(settings)
    secret = json.dumps({"access_token": DEMO_TOKEN})
    sealed = {"ciphertext": box.encrypt(secret, credentials_context(DEMO_CONNECTION_ID))}
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(SEED, {"user_id": DEMO_USER_ID, "email": DEMO_EMAIL})
        await conn.execute(SEED_PROFILE, {"user_id": DEMO_USER_ID, "email": DEMO_EMAIL})
        row = await metrics.insert_connection(
            conn,
            connection_id=DEMO_CONNECTION_ID,
            platform="meta",
            credentials=sealed,
            account_id=DEMO_ACCOUNT_ID,
            account_name="Demo ad account",
            sync_frequency=DEMO_FREQUENCY_MINUTES,
            created_by=DEMO_USER_ID,
        )
    change = await reconcile_connection(client, row, settings.temporal_task_queue)
    await ensure_reconcile_schedule(client, settings.temporal_task_queue)
    # Token refresh, retention and dashboard schedules, at once rather than in 10 minutes.
    await reconcile_housekeeping(client, pool, settings.temporal_task_queue)
    if change == "created":
        await trigger_sync(client, row.id)
    return schedule_id(row.id)


async def _configure_emulator(graph_url: str) -> None:
    """Give the Meta emulator the demo account; a real Graph API URL is left alone."""
    if urlparse(graph_url).hostname not in LOOPBACK:
        return
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{graph_url}/_emulator/accounts",
            json={"account_id": DEMO_ACCOUNT_ID, "campaigns": 3},
        )
        response.raise_for_status()
