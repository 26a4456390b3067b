"""Metric syncs: connections, expected values from the emulators, schedule clean-up."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import date
from decimal import Decimal
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from activities.metric_schedules import schedule_id, start_backfill
from activities.metric_sync import credentials_context
from db import metrics
from db.metrics import ConnectionRow, Platform
from tests.harness import Stack
from tests.waiting import eventually
from workers.keys import credential_box

Value = tuple[str, str, date, Decimal]  # campaign, metric type, day, value
SINCE, UNTIL = date(2025, 3, 1), date(2025, 3, 10)  # two slices: 7 days and 3 days


async def add_connection(
    stack: Stack,
    *,
    platform: Platform = "meta",
    account_id: str = "1234567",
    token: str = "EAAB-good-token",
    frequency: int = 60,
    login_customer_id: str | None = None,
    **fields: Any,
) -> ConnectionRow:
    """A connection with its token encrypted as the CLI stores it."""
    connection_id = uuid.uuid4()
    box = credential_box(stack.settings)
    sealed = box.encrypt(json.dumps({"access_token": token}), credentials_context(connection_id))
    async with stack.pool.connection() as conn:
        return await metrics.insert_connection(
            conn,
            connection_id=connection_id,
            platform=platform,
            credentials={"ciphertext": sealed},
            account_id=account_id,
            account_name=fields.pop("account_name", "Test account"),
            sync_frequency=frequency,
            created_by=None,
            login_customer_id=login_customer_id,
        )


def expected_meta(stack: Stack, account_id: str, since: date, until: date) -> set[Value]:
    """The values a Meta sync of the window must store."""
    values: set[Value] = set()
    counted = set(stack.settings.meta_conversion_action_types.split(","))
    for row in stack.emulators.meta.expected_rows(account_id, str(since), str(until)):
        day = date.fromisoformat(row["date_start"])
        conversions = sum(
            (
                Decimal(c["value"])
                for c in row.get("conversions", [])
                if c["action_type"] in counted
            ),
            Decimal(0),
        )
        for metric, value in (
            ("impressions", Decimal(row["impressions"])),
            ("clicks", Decimal(row["clicks"])),
            ("spend", Decimal(row["spend"])),
            ("conversions", conversions),
        ):
            values.add((row["campaign_id"], metric, day, value))
    return values


def expected_google(stack: Stack, customer_id: str, since: date, until: date) -> set[Value]:
    """The values a Google Ads sync of the window must store."""
    values: set[Value] = set()
    for row in stack.emulators.google_ads.expected_rows(customer_id, str(since), str(until)):
        day = date.fromisoformat(row["segments"]["date"])
        m = row.get("metrics", {})  # zero metrics are left out of the JSON
        for metric, value in (
            ("impressions", Decimal(m.get("impressions", 0))),
            ("clicks", Decimal(m.get("clicks", 0))),
            ("spend", Decimal(m.get("costMicros", 0)) / Decimal(1_000_000)),
            ("conversions", Decimal(str(m.get("conversions", 0)))),
        ):
            values.add((row["campaign"]["id"], metric, day, value))
    return values


async def stored_values(stack: Stack, connection_id: uuid.UUID) -> list[Value]:
    """Every performance_metrics value of a connection (a list: duplicates would show)."""
    rows = await stack.fetchall(
        "SELECT entity_id, metric_type, date, value FROM performance_metrics "
        "WHERE platform_connection_id = %s",
        connection_id,
    )
    return [(r["entity_id"], r["metric_type"], r["date"], r["value"]) for r in rows]


async def sync_log(stack: Stack, workflow_id: str) -> dict[str, Any]:
    """The latest sync log row of a workflow id."""
    row = await stack.fetchrow(
        "SELECT * FROM metric_sync_logs WHERE temporal_workflow_id = %s "
        "ORDER BY start_time DESC LIMIT 1",
        workflow_id,
    )
    assert row is not None, f"no sync log for {workflow_id}"
    return row


async def sync_log_opened(stack: Stack, workflow_id: str) -> None:
    """Wait until the sync of ``workflow_id`` has opened its log."""
    await eventually(
        lambda: stack.fetchrow(
            "SELECT 1 AS open FROM metric_sync_logs WHERE temporal_workflow_id = %s", workflow_id
        ),
        what=f"the sync log of {workflow_id}",
    )


async def backfill(
    stack: Stack, connection: ConnectionRow, since: date = SINCE, until: date = UNTIL
) -> WorkflowHandle[Any, Any]:
    """Start a backfill of the window on the stack's task queue."""
    return await start_backfill(
        stack.client, stack.pool, stack.settings.temporal_task_queue, connection.id, since, until
    )


@asynccontextmanager
async def deleting_schedules(client: Client, *ids: str) -> AsyncIterator[list[str]]:
    """Delete the named schedules (and any added to the list) at the end: the dev server
    is shared by the whole session."""
    names = list(ids)
    try:
        yield names
    finally:
        for name in names:
            with suppress(RPCError):
                await client.get_schedule_handle(name).delete()


def connection_schedule(connection: ConnectionRow) -> str:
    """The schedule id of a connection."""
    return schedule_id(connection.id)
