"""MetricSync against the Meta and Google Ads emulators: exact rows, idempotent re-runs,
late data, partial pages, throttling, expired tokens and scheduled windows."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.connectors.meta import PAGE_LIMIT
from activities.metric_schedules import reconcile_connection, trigger_sync
from db.metrics import SPLIT_PAGE_VALUES
from tests.harness import running_stack
from tests.history_recording import record_history
from tests.metrics import (
    SINCE,
    UNTIL,
    add_connection,
    backfill,
    connection_schedule,
    deleting_schedules,
    expected_google,
    expected_meta,
    stored_values,
    sync_log,
)
from tests.waiting import eventually
from workflows.metric_sync import MetricSync

ACCOUNT = "1234567"
CUSTOMER = "9876543210"
MANAGER = "1112223333"
DEV_TOKEN = "dev-test-token"
# 2.1 pages of Meta rows a day for 7 days: the first slice is 3 pages, the 3-day slice 1.
CAMPAIGNS = 3 * PAGE_LIMIT // 10


def rows_per_transaction(write_values: list[int]) -> list[int]:
    """Rows each writing transaction leaves, fewest first: big writes go as two halves."""
    rows = []
    for n in write_values:
        rows += [n // 2, n - n // 2] if n >= SPLIT_PAGE_VALUES else [n]
    return sorted(rows)


async def test_backfill_writes_exactly_the_expected_meta_rows(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        stack.emulators.meta.configure_account(ACCOUNT, campaigns=CAMPAIGNS)
        connection = await add_connection(stack, account_id=ACCOUNT, token="EAAB-secret-1")
        handle = await backfill(stack, connection)
        result = await handle.result()
        await record_history(handle, "metric_sync_backfill")

        stored = await stored_values(stack, connection.id)
        expected = expected_meta(stack, ACCOUNT, SINCE, UNTIL)
        assert len(stored) == len(set(stored)) == CAMPAIGNS * 10 * 4
        assert set(stored) == expected
        assert (result.status, result.created, result.updated, result.pages) == (
            "success",
            CAMPAIGNS * 10 * 4,
            0,
            4,
        )
        written = await stack.fetchall(
            "SELECT count(*) AS n FROM performance_metrics WHERE platform_connection_id = %s "
            "GROUP BY xmin::text ORDER BY n",
            connection.id,
        )
        # A slice's pages are written together (up to METRIC_SYNC_WRITE_VALUES): the 7-day
        # slice's three pages in one write, in two halves; the 3-day slice's one page.
        slice_values = [7 * CAMPAIGNS * 4, 3 * CAMPAIGNS * 4]
        assert [r["n"] for r in written] == rows_per_transaction(slice_values)
        assert handle.id == f"metric-sync-{connection.id}-backfill-{SINCE}-{UNTIL}"
        log = await sync_log(stack, handle.id)
        assert (log["status"], log["metrics_created"], log["metrics_updated"]) == (
            "success",
            CAMPAIGNS * 10 * 4,
            0,
        )
        assert log["window_start"] == datetime(2025, 3, 1, tzinfo=UTC)
        assert log["window_end"] == datetime(2025, 3, 11, tzinfo=UTC)
        detail = await stack.fetchrow(
            "SELECT DISTINCT source, sync_id, platform, source_detail FROM performance_metrics "
            "WHERE platform_connection_id = %s AND entity_id = %s",
            connection.id,
            next(iter(expected))[0],
        )
        assert detail is not None
        assert (detail["source"], detail["sync_id"], detail["platform"]) == (
            "api_sync",
            log["id"],
            "meta",
        )
        assert set(detail["source_detail"]) == {
            "platform",
            "account_id",
            "campaign_name",
            "api_version",
        }
        row = await stack.fetchrow(
            "SELECT last_synced_at, credentials::text AS creds FROM platform_connections "
            "WHERE id = %s",
            connection.id,
        )
        assert row is not None and row["last_synced_at"] == log["window_end"]
        assert "EAAB-secret-1" not in row["creds"]
        history = (await handle.fetch_history()).to_json()
        assert "EAAB-secret-1" not in history
        assert "impressions" not in history  # counts in history, never rows


async def test_google_ads_sync_pages_with_tokens_and_no_page_size(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, google_ads_developer_token="dev-token-1"
    ) as stack:
        google = stack.emulators.google_ads
        google.page_size = 10
        google.developer_token = "dev-token-1"
        google.configure_customer(CUSTOMER, campaigns=3, manager_id=MANAGER)
        connection = await add_connection(
            stack,
            platform="google_ads",
            account_id="987-654-3210",
            token="ya29.secret",
            login_customer_id=MANAGER,
        )
        result = await (await backfill(stack, connection)).result()

        stored = await stored_values(stack, connection.id)
        assert len(stored) == len(set(stored)) == 3 * 10 * 4
        assert set(stored) == expected_google(stack, CUSTOMER, SINCE, UNTIL)
        assert (result.status, result.created, result.pages) == ("success", 120, 4)
        requests = google.requests()
        assert {r["status"] for r in requests} == {200}
        assert {r["developer_token"] for r in requests} == {"dev-token-1"}
        assert {r["login_customer_id"] for r in requests} == {MANAGER}
        version = stack.settings.google_ads_api_version
        assert {r["path"].split("/")[2] for r in requests} == {version}


async def test_google_ads_sync_without_a_developer_token_fails_with_one_clear_line(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, google_ads_developer_token=None
    ) as stack:
        google = stack.emulators.google_ads
        google.configure_customer(CUSTOMER, campaigns=3)
        connection = await add_connection(stack, platform="google_ads", account_id=CUSTOMER)
        handle = await backfill(stack, connection)
        with pytest.raises(WorkflowFailureError):
            await handle.result()

        log = await sync_log(stack, handle.id)
        assert log["status"] == "failed"
        assert "GOOGLE_ADS_DEVELOPER_TOKEN is not set" in log["error_message"]
        assert "\n" not in log["error_message"]
        assert google.request_count() == 0  # nothing sent that Google would refuse


async def test_google_ads_sync_of_a_customer_behind_a_manager_needs_its_login_customer_id(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, google_ads_developer_token=DEV_TOKEN
    ) as stack:
        google = stack.emulators.google_ads
        google.configure_customer(CUSTOMER, campaigns=3, manager_id=MANAGER)
        connection = await add_connection(stack, platform="google_ads", account_id=CUSTOMER)
        handle = await backfill(stack, connection)
        with pytest.raises(WorkflowFailureError):
            await handle.result()

        log = await sync_log(stack, handle.id)
        assert "login-customer-id" in log["error_message"]
        assert google.request_count() == 1  # a refusal is not retried


async def test_rerunning_a_window_creates_no_duplicates_and_counts_late_data_as_updates(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        meta.configure_account(ACCOUNT, campaigns=5)
        connection = await add_connection(stack, account_id=ACCOUNT)
        first = await (await backfill(stack, connection)).result()
        again = await (await backfill(stack, connection)).result()
        before = expected_meta(stack, ACCOUNT, SINCE, UNTIL)
        meta.bump_values(ACCOUNT, dates=["2025-03-04", "2025-03-09"])
        after = expected_meta(stack, ACCOUNT, SINCE, UNTIL)
        late = await (await backfill(stack, connection)).result()

        assert (first.created, first.updated, first.unchanged) == (200, 0, 0)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 200)
        changed = len(after - before)
        assert changed > 0
        assert (late.created, late.updated, late.unchanged) == (0, changed, 200 - changed)
        stored = await stored_values(stack, connection.id)
        assert len(stored) == 200 and set(stored) == after
        logs = await stack.fetchall(
            "SELECT metrics_created, metrics_updated FROM metric_sync_logs "
            "WHERE platform_connection_id = %s ORDER BY start_time",
            connection.id,
        )
        assert [(r["metrics_created"], r["metrics_updated"]) for r in logs] == [
            (200, 0),
            (0, 0),
            (0, changed),
        ]


async def test_a_page_that_keeps_failing_makes_the_sync_partial(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        meta.configure_account(ACCOUNT, campaigns=CAMPAIGNS)
        meta.fail_page(ACCOUNT, 1, times=100)  # the second page of every slice
        connection = await add_connection(stack, account_id=ACCOUNT)
        handle = await backfill(stack, connection)
        result = await handle.result()
        await record_history(handle, "metric_sync_partial")

        assert (result.status, result.failed_pages) == ("partial", 1)
        log = await sync_log(stack, handle.id)
        assert log["status"] == "partial"
        [failure] = log["details"]["failed_pages"]
        assert failure["account_id"] == ACCOUNT
        assert (failure["since"], failure["until"], failure["page_index"]) == (
            "2025-03-01",
            "2025-03-07",
            1,
        )
        assert "500" in failure["reason"]
        # The first page of the first slice and the whole second slice are stored.
        rows = PAGE_LIMIT + 3 * CAMPAIGNS
        assert len(await stored_values(stack, connection.id)) == rows * 4
        assert log["metrics_created"] == rows * 4
        row = await stack.fetchrow(
            "SELECT last_synced_at FROM platform_connections WHERE id = %s", connection.id
        )
        assert row is not None and row["last_synced_at"] is None  # partial: not advanced


async def test_google_throttling_is_waited_out_as_its_retry_delay_asks(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, google_ads_developer_token=DEV_TOKEN
    ) as stack:
        emulator = stack.emulators.google_ads
        emulator.configure_customer(CUSTOMER, campaigns=3)
        connection = await add_connection(stack, platform="google_ads", account_id=CUSTOMER)
        emulator.throttle_next(1, retry_after_s=2)
        started = time.monotonic()
        result = await (await backfill(stack, connection)).result()
        elapsed = time.monotonic() - started

        assert result.status == "success"
        statuses = [r["status"] for r in emulator.requests()]
        assert statuses[0] == 429 and set(statuses[1:]) == {200}
        assert len(statuses) == 3  # the throttled request, then one per slice
        assert elapsed >= 2.0, "quotaErrorDetails.retryDelay was not honoured"


async def test_meta_throttling_waits_as_long_as_the_usage_header_says(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        meta.configure_account(ACCOUNT, campaigns=3)
        connection = await add_connection(stack, account_id=ACCOUNT)
        meta.throttle_next(1, retry_after_s=180)  # "estimated_time_to_regain_access": 3
        handle = await backfill(stack, connection)
        try:

            async def retry_pending() -> str | None:
                for pending in (await handle.describe()).raw_description.pending_activities:
                    if pending.HasField("last_failure"):
                        # Failure messages are encrypted (workers/codec.py): decode first.
                        error = await stack.client.data_converter.decode_failure(
                            pending.last_failure
                        )
                        return str(error)
                return None

            message = await eventually(retry_pending, what="the throttled pull to wait")
        finally:
            await handle.terminate("the test saw the wait")

        assert "Meta rate limit (code 80000)" in message
        assert "retrying in 180s" in message  # 3 minutes, from x-business-use-case-usage
        assert meta.request_count(ACCOUNT) == 1  # not asked again before the wait


async def test_pages_fetched_before_a_long_throttle_are_written_before_the_wait(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Pages are written a few at a time; a throttle too long to wait out inline ends the
    attempt, and what was fetched is written first: the retry resumes after it."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        meta.configure_account(ACCOUNT, campaigns=CAMPAIGNS)
        connection = await add_connection(stack, account_id=ACCOUNT)
        meta.throttle_next(1, retry_after_s=180, after=1)  # the second page of the first slice
        handle = await backfill(stack, connection)
        try:

            async def resumes_after() -> int | None:
                for pending in (await handle.describe()).raw_description.pending_activities:
                    if pending.HasField("last_failure") and pending.heartbeat_details.payloads:
                        payloads = list(pending.heartbeat_details.payloads)
                        [details] = await stack.client.data_converter.decode(payloads)
                        return int(details["pages"]) or None
                return None

            pages = await eventually(resumes_after, what="the throttled pull to wait")
        finally:
            await handle.terminate("the test saw the wait")

        assert pages == 1  # the retry starts at the second page
        assert len(await stored_values(stack, connection.id)) == PAGE_LIMIT * 4
        assert meta.request_count(ACCOUNT) == 2  # not asked again before the wait


async def test_an_expired_token_fails_the_sync_once_without_retries(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        meta.configure_account(ACCOUNT, campaigns=3)
        connection = await add_connection(stack, account_id=ACCOUNT, token="EAAB-expired-9")
        meta.expire_token("EAAB-expired-9")
        handle = await backfill(stack, connection)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        await record_history(handle, "metric_sync_failed")

        assert "access token expired or revoked" in str(failure.value.cause)
        log = await sync_log(stack, handle.id)
        assert log["status"] == "failed"
        assert "access token expired or revoked" in log["error_message"]
        assert "reconnect the account" in log["error_message"]
        assert "EAAB-expired-9" not in log["error_message"]
        assert meta.request_count(ACCOUNT) == 1  # no retry storm
        assert "EAAB-expired-9" not in (await handle.fetch_history()).to_json()
        row = await stack.fetchrow(
            "SELECT last_synced_at FROM platform_connections WHERE id = %s", connection.id
        )
        assert row is not None and row["last_synced_at"] is None


async def test_a_scheduled_sync_pulls_since_the_last_sync_minus_the_lookback(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, metric_sync_lookback=timedelta(days=2)
    ) as stack:
        stack.emulators.meta.configure_account(ACCOUNT, campaigns=3)
        connection = await add_connection(stack, account_id=ACCOUNT)
        last = datetime.now(UTC) - timedelta(days=3)
        await stack.fetchrow(
            "UPDATE platform_connections SET last_synced_at = %s WHERE id = %s RETURNING id",
            last,
            connection.id,
        )
        async with deleting_schedules(stack.client, connection_schedule(connection)):
            await reconcile_connection(stack.client, connection, task_queue)
            await trigger_sync(stack.client, connection.id)
            schedule = stack.client.get_schedule_handle(connection_schedule(connection))

            async def started() -> str | None:
                actions = (await schedule.describe()).info.recent_actions
                return actions[-1].action.workflow_id if actions else None  # type: ignore[attr-defined]

            workflow_id = await eventually(started, what="the scheduled sync to start")
            handle = stack.client.get_workflow_handle_for(MetricSync.run, workflow_id)
            result = await handle.result()
            await record_history(handle, "metric_sync_success")

        since = (last - timedelta(days=2)).date()
        today = datetime.now(UTC).date()
        assert workflow_id.startswith(f"metric-sync-{connection.id}-")
        assert (result.status, result.since, result.until) == ("success", since, today)
        stored = await stored_values(stack, connection.id)
        assert Counter(v[2] for v in stored) == {
            since + timedelta(days=n): 3 * 4 for n in range((today - since).days + 1)
        }
        log = await sync_log(stack, workflow_id)
        row = await stack.fetchrow(
            "SELECT last_synced_at FROM platform_connections WHERE id = %s", connection.id
        )
        assert row is not None and row["last_synced_at"] == log["window_end"]
        description = await handle.describe()
        attributes = {p.key.name: p.value for p in description.typed_search_attributes}
        assert attributes["ConnectionId"] == str(connection.id)
        assert (attributes["Platform"], attributes["SyncOutcome"]) == ("meta", "success")
