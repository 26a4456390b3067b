"""The demo user's notification channel in `orchestrator dev`: a webhook of the Slack
emulator (its messages: `orchestrator outbox slack`)."""

from __future__ import annotations

import uuid

import httpx

from activities.notifications import store_channel
from db.pool import Pool
from devstack.demo import DEMO_USER_ID
from workers.keys import credential_box
from workers.settings import Settings

DEMO_CHANNEL_ID = uuid.UUID("00000000-0000-4000-8000-000000000004")


async def seed_demo_slack_channel(pool: Pool, settings: Settings, emulators_url: str) -> str:
    """A new webhook on this start's Slack emulator, as the demo user's Slack channel."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{emulators_url}/slack/_emulator/webhooks", json={"channel": "#agency-alerts"}
        )
    response.raise_for_status()
    await store_channel(
        pool,
        credential_box(settings),
        kind="slack_webhook",
        user_id=DEMO_USER_ID,
        secret=str(response.json()["url"]),
        channel_id=DEMO_CHANNEL_ID,
    )
    return "#agency-alerts"
