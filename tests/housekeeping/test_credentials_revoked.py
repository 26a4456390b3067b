"""Credentials that fail for good: the connection is marked, its schedules pause with the
reason, its owner is emailed once; reconnecting resumes them. Google Ads access tokens are
minted from the refresh token before a sync, cached, minted again when refused, and a
revoked grant suspends the connection the same way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.credential_suspension import SuspendInput
from activities.housekeeping_schedules import (
    reconcile_housekeeping,
    retention_schedule_id,
    token_schedule_id,
)
from activities.metric_schedules import reconcile_schedules, schedule_id
from activities.notifications import store_channel
from devstack.emulators.meta import LONG_LIVED
from tests.encryption import TEST_KEYRING
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.housekeeping import (
    add_owner,
    add_renewing_connection,
    add_threads_account,
    operator_env,
    run_cli,
    stored_connection_secret,
)
from tests.metrics import SINCE, UNTIL, backfill, deleting_schedules, expected_google, stored_values
from tests.waiting import eventually
from workers.housekeeping import credential_suspension
from workflows.models.housekeeping import TokenRefreshInput
from workflows.token_refresh import TokenRefresh

CUSTOMER = "2223334445"


async def _paused(stack: Stack, schedule: str) -> str | None:
    state = (await stack.client.get_schedule_handle(schedule).describe()).schedule.state
    return state.note if state.paused else None


async def _running(stack: Stack, schedule: str) -> bool:
    return not (await stack.client.get_schedule_handle(schedule).describe()).schedule.state.paused


async def test_a_revoked_meta_token_pauses_the_schedules_tells_the_owner_once_and_resumes(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta, resend = stack.emulators.meta, stack.emulators.resend
        meta.configure_account("8080808", campaigns=1)
        owner = await add_owner(stack, "owner@agency.example")
        token = meta.issue_user_token("ana", long_lived=True)
        # Six days left: the next check exchanges it.
        row = await add_renewing_connection(
            stack,
            account_id="8080808",
            secret={"access_token": token},
            expires_at=datetime.now(UTC) + timedelta(days=6),
            owner=owner,
        )
        sync, refresh = schedule_id(row.id), token_schedule_id("connection", row.id)
        retention = retention_schedule_id(task_queue)
        async with deleting_schedules(stack.client, sync, refresh, retention):
            await reconcile_schedules(stack.client, stack.pool, task_queue)
            made = await reconcile_housekeeping(stack.client, stack.pool, task_queue)
            assert refresh in made.created
            meta.revoke("ana", 458)  # the owner removed the app

            handle = await stack.client.start_workflow(
                TokenRefresh.run,
                TokenRefreshInput(holder="connection", holder_id=row.id),
                id=f"token-refresh-revoked-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            result = await handle.result()
            await record_history(handle, "token_refresh_revoked")
            assert result.outcome == "revoked" and "190/458" in (result.reason or "")
            assert sorted(result.paused) == sorted([sync, refresh]) and result.notified

            marked = await stack.fetchrow(
                "SELECT credentials_status, credentials_error, credentials_failed_at, "
                "credentials_notified_at FROM platform_connections WHERE id = %s",
                row.id,
            )
            assert marked is not None and marked["credentials_status"] == "revoked"
            assert "190/458" in marked["credentials_error"] and marked["credentials_notified_at"]
            for name in (sync, refresh):
                note = await _paused(stack, name)
                assert note and "stopped working" in note and "reconnect" in note
            mails = [m for m in resend.sent_emails() if "owner@agency.example" in m["to"]]
            assert len(mails) == 1 and "Reconnect meta account 8080808" in mails[0]["subject"]
            assert token not in json.dumps(mails[0])

            # The reconcile keeps them paused; another check neither calls Meta nor mails.
            again = await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert again.unpaused == [] and await _paused(stack, sync)
            calls = len(meta.requests())
            later = await stack.client.execute_workflow(
                TokenRefresh.run,
                TokenRefreshInput(holder="connection", holder_id=row.id),
                id=f"token-refresh-revoked-again-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            assert later.outcome == "awaiting_reconnect" and later.paused == []
            assert len(meta.requests()) == calls
            assert len([m for m in resend.sent_emails() if "owner@agency" in m["to"][0]]) == 1
            # A sync started by hand (a backfill) fails at once with the reason, no call.
            with pytest.raises(WorkflowFailureError) as failed:
                await (await backfill(stack, row)).result()
            assert "stopped working" in str(failed.value.cause)
            assert len(meta.requests()) == calls

            # Reconnecting with a new token (exchanged for a long-lived one) resumes both.
            operator_env(stack, monkeypatch)
            new = meta.issue_user_token("ana")  # she logged in again: a short-lived token
            monkeypatch.setattr("sys.stdin", _Stdin(new))
            done = await run_cli(capsys, "connections", "reconnect", str(row.id), "--token", "-")
            assert done["schedule"] == "unpaused" and done["token_refresh"] == "unpaused"
            for name in (sync, refresh):
                await eventually(lambda n=name: _running(stack, n), what=f"{name} resumed")
            stored = await stored_connection_secret(stack, row.id)
            assert stored["access_token"] not in (new, token)  # the long-lived exchange
            state = await stack.fetchrow(
                "SELECT credentials_status, credentials_error, token_expires_at "
                "FROM platform_connections WHERE id = %s",
                row.id,
            )
            assert state is not None and state["credentials_status"] == "ok"
            assert state["credentials_error"] is None
            assert state["token_expires_at"] > datetime.now(UTC) + LONG_LIVED - timedelta(hours=1)
            synced = await (await backfill(stack, row, SINCE, SINCE)).result()
            assert synced.status == "success"


class _Stdin:
    def __init__(self, line: str) -> None:
        self.line = line

    def readline(self) -> str:
        return self.line + "\n"


async def test_google_ads_mints_access_tokens_from_the_refresh_token_and_caches_them(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, google_ads_developer_token="dev-token"
    ) as stack:
        google, oauth = stack.emulators.google_ads, stack.emulators.google_oauth
        google.configure_customer(CUSTOMER, campaigns=2)
        grant = oauth.grant()
        row = await add_renewing_connection(
            stack, platform="google_ads", account_id=CUSTOMER,
            secret={"refresh_token": grant}, expires_at=None,
        )  # fmt: skip
        first = await (await backfill(stack, row)).result()
        assert first.status == "success"
        second = await (await backfill(stack, row, SINCE, SINCE)).result()
        assert second.status == "success"
        assert oauth.mint_count(grant) == 1  # the second sync used the cached token
        assert set(await stored_values(stack, row.id)) == expected_google(
            stack, CUSTOMER, SINCE, UNTIL
        )
        # Two hours later (the platform's clock) the cached token is refused as expired:
        # the sync mints a new one and goes on.
        stack.emulators.clock.advance(timedelta(hours=2))
        third = await (await backfill(stack, row, SINCE, SINCE)).result()
        assert third.status == "success" and oauth.mint_count(grant) == 2
        last = await backfill(stack, row, UNTIL, UNTIL)
        await last.result()
        history = await last.fetch_history()
        assert grant not in history.to_json()
        [access] = [t.token for t in oauth.access_tokens.issued()][-1:]
        assert access not in history.to_json()


async def test_a_revoked_google_grant_fails_the_sync_and_suspends_the_connection(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(
        db_url, temporal_env.client, task_queue, google_ads_developer_token="dev-token"
    ) as stack:
        google, oauth = stack.emulators.google_ads, stack.emulators.google_oauth
        google.configure_customer(CUSTOMER, campaigns=1)
        owner = await add_owner(stack, "ads-owner@agency.example")
        grant = oauth.grant()
        row = await add_renewing_connection(
            stack, platform="google_ads", account_id=CUSTOMER,
            secret={"refresh_token": grant}, expires_at=None, owner=owner,
        )  # fmt: skip
        sync = schedule_id(row.id)
        async with deleting_schedules(stack.client, sync):
            await reconcile_schedules(stack.client, stack.pool, task_queue)
            assert (await (await backfill(stack, row, SINCE, SINCE)).result()).status == "success"
            oauth.revoke(grant)
            stack.emulators.clock.advance(timedelta(hours=2))  # the cached token expired too
            handle = await backfill(stack, row, UNTIL, UNTIL)
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            assert "refresh token stopped working" in str(failed.value.cause)
            assert grant not in str(failed.value.cause)
            await eventually(lambda: _paused(stack, sync), what="the sync schedule paused")
            state = await stack.fetchrow(
                "SELECT credentials_status, credentials_error FROM platform_connections "
                "WHERE id = %s",
                row.id,
            )
            assert state is not None and state["credentials_status"] == "revoked"
            assert "invalid_grant" in state["credentials_error"]
            mails = [
                m for m in stack.emulators.resend.sent_emails()
                if "ads-owner@agency.example" in m["to"]
            ]  # fmt: skip
            assert len(mails) == 1 and grant not in json.dumps(mails[0])


async def test_an_owner_with_a_channel_for_it_is_told_there_once_and_not_also_emailed(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The owner's notification channels take ``connection.credentials_expired``: the
    suspension raises the event there (one message, whatever the retries) instead of the
    direct email, which stays for owners without such a channel (the test above)."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        meta, resend, slack = stack.emulators.meta, stack.emulators.resend, stack.emulators.slack
        meta.configure_account("7070707", campaigns=1)
        owner = await add_owner(stack, "teller@agency.example")
        webhook = slack.add_webhook(f"{stack.emulators.url}/slack", "#connections")
        await store_channel(
            stack.pool,
            TEST_KEYRING.credential_box(),
            kind="slack_webhook",
            user_id=owner,
            secret=webhook,
            events=["connection.credentials_expired"],
        )
        token = meta.issue_user_token("bea", long_lived=True)
        row = await add_renewing_connection(
            stack,
            account_id="7070707",
            secret={"access_token": token},
            expires_at=datetime.now(UTC) + timedelta(days=6),
            owner=owner,
        )
        meta.revoke("bea", 458)
        sync, refresh = schedule_id(row.id), token_schedule_id("connection", row.id)
        async with deleting_schedules(stack.client, sync, refresh):
            result = await stack.client.execute_workflow(
                TokenRefresh.run,
                TokenRefreshInput(holder="connection", holder_id=row.id),
                id=f"token-refresh-told-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            assert result.outcome == "revoked" and result.notified

            async def posted() -> list[dict[str, object]] | None:
                found = [m for m in slack.messages() if m["channel"] == "#connections"]
                return found or None

            [message] = await eventually(posted, what="the Slack message")
            assert "credentials_expired" in str(message["text"])
            assert "7070707" in str(message["text"]) and token not in str(message["text"])
            assert not [m for m in resend.sent_emails() if "teller@agency.example" in m["to"]]
            # The suspension again (a retried activity): the event finds its delivery.
            again = await credential_suspension(stack.settings, stack.pool).suspend(
                stack.client,
                SuspendInput(holder="connection", holder_id=row.id, reason="190/458 again"),
            )
            assert again.notified
            await eventually(lambda: _all_sent(stack, owner), what="the delivery's row final")
            assert (
                len(
                    await stack.fetchall(
                        "SELECT id FROM notification_queue WHERE user_id = %s", owner
                    )
                )
                == 1
            )
            assert len([m for m in slack.messages() if m["channel"] == "#connections"]) == 1


async def _all_sent(stack: Stack, owner: uuid.UUID) -> bool:
    rows = await stack.fetchall("SELECT outcome FROM notification_queue WHERE user_id = %s", owner)
    return bool(rows) and all(r["outcome"] == "sent" for r in rows)


async def test_a_revoked_threads_token_pauses_its_refresh_tells_the_owner_and_reconnects(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        threads, resend = stack.emulators.threads, stack.emulators.resend
        owner = await add_owner(stack, "threads-owner@agency.example")
        token = threads.issue_token("tia", long_lived=True)
        account = await add_threads_account(
            stack, owner, token, datetime.now(UTC) + timedelta(days=3)
        )
        refresh = token_schedule_id("threads", account.id)
        retention = retention_schedule_id(task_queue)
        async with deleting_schedules(stack.client, refresh, retention):
            made = await reconcile_housekeeping(stack.client, stack.pool, task_queue)
            assert refresh in made.created
            threads.revoke("tia", 460)  # the password changed: the token is void

            result = await stack.client.execute_workflow(
                TokenRefresh.run,
                TokenRefreshInput(holder="threads", holder_id=account.id),
                id=f"token-refresh-threads-revoked-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            assert result.outcome == "revoked" and result.paused == [refresh] and result.notified
            note = await _paused(stack, refresh)
            assert note and "stopped working" in note
            marked = await stack.fetchrow(
                "SELECT credentials_status, credentials_notified_at FROM threads_accounts "
                "WHERE id = %s",
                account.id,
            )
            assert marked is not None and marked["credentials_status"] == "revoked"
            assert marked["credentials_notified_at"] is not None
            mails = [m for m in resend.sent_emails() if "threads-owner@agency.example" in m["to"]]
            assert len(mails) == 1 and "threads reconnect" in mails[0]["text"]
            assert token not in json.dumps(mails[0])

            # Reconnected with a new long-lived token: the refresh schedule runs again.
            operator_env(stack, monkeypatch)
            new = threads.issue_token("tia", long_lived=True)
            monkeypatch.setattr("sys.stdin", _Stdin(new))
            done = await run_cli(capsys, "threads", "reconnect", str(account.id), "--token", "-")
            assert done["schedule"] == "unpaused"
            await eventually(lambda: _running(stack, refresh), what="the refresh resumed")
            state = await stack.fetchrow(
                "SELECT credentials_status, credentials_error FROM threads_accounts WHERE id = %s",
                account.id,
            )
            assert state == {"credentials_status": "ok", "credentials_error": None}
