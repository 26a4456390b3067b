"""A worker killed mid-pull: another worker resumes from the heartbeat cursor, refetches
none of the pages already written and leaves no duplicate metric rows."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from tests.harness import Stack, running_stack, start_worker_process
from tests.metrics import SINCE, add_connection, backfill, expected_google, stored_values
from tests.waiting import eventually

CUSTOMER = "1112223334"
UNTIL = SINCE + timedelta(days=6)  # one slice: 3 campaigns x 7 days = 7 pages of 3 rows


async def _pages_heartbeated(stack: Stack, handle: Any, at_least: int) -> bool:
    """Whether the server holds a pull heartbeat with at least this many pages written."""
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        payloads = list(pending.heartbeat_details.payloads)
        if payloads:
            [details] = await stack.client.data_converter.decode(payloads)
            if details["pages"] >= at_least:
                return True
    return False


async def test_killed_worker_resumes_the_pull_from_its_heartbeat(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(
        db_url,
        temporal_env.client,
        task_queue,
        worker=False,
        google_ads_developer_token="dev-token-crash",
        metric_sync_write_values=24,  # two pages of 3 rows x 4 values per write
    ) as stack:
        google = stack.emulators.google_ads
        google.page_size = 3
        google.configure_customer(CUSTOMER, campaigns=3)
        # Each page takes a while: the SDK sends a heartbeat at most every 8 s, and the pull
        # must still be running when the one after its first write is sent.
        google.faults.latency_s = 2.5
        connection = await add_connection(stack, platform="google_ads", account_id=CUSTOMER)
        first = start_worker_process(stack.settings, address)
        try:
            handle = await backfill(stack, connection, SINCE, UNTIL)
            await eventually(
                lambda: _pages_heartbeated(stack, handle, 2),
                timeout=60,
                what="two pages written together and heartbeated",
            )
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
        finally:
            if first.poll() is None:
                first.kill()
        written = len(await stored_values(stack, connection.id))
        assert 0 < written < 3 * 7 * 4, "the kill did not land mid-pull"
        google.faults.latency_s = 0
        second = start_worker_process(stack.settings, address)
        try:
            result = await asyncio.wait_for(handle.result(), timeout=90)
        finally:
            second.terminate()
            await asyncio.to_thread(second.wait, 20)

        assert result.status == "success"
        stored = await stored_values(stack, connection.id)
        assert len(stored) == len(set(stored)) == 3 * 7 * 4
        assert set(stored) == expected_google(stack, CUSTOMER, SINCE, UNTIL)
        # The first two pages were written and heartbeated before the kill: the second
        # worker starts after them. (Later pages may be fetched twice: fetched and not yet
        # written, or written before a heartbeat the SDK had not sent yet, at most every 8 s.)
        fetched = Counter(r["page_index"] for r in google.requests() if r["status"] == 200)
        assert fetched[0] == fetched[1] == 1, f"the pull restarted from the first page: {fetched}"
        assert set(fetched) == set(range(7))
        log = await stack.fetchrow(
            "SELECT status, details FROM metric_sync_logs WHERE temporal_workflow_id = %s",
            handle.id,
        )
        assert log is not None and log["status"] == "success"
        assert log["details"]["resumed"] == 1
