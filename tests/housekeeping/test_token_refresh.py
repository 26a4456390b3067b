"""Long-lived tokens renewed before they expire, under the time-skipping server: a Meta
token is exchanged again and a Threads token refreshed a week before expiry, never before;
the new token is stored encrypted and works, the old one expires at the platform.

Each phase starts from the server's current time (the test server may move its clock on
its own between workflows), and days pass with ``env.sleep`` on the server and the same
days on the emulated platforms' clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from activities.token_refresh import threads_context
from devstack.emulators.meta import LONG_LIVED
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.housekeeping import (
    add_owner,
    add_renewing_connection,
    add_threads_account,
    stored_connection_secret,
)
from workers.keys import credential_box
from workflows.models.housekeeping import Holder, TokenRefreshInput, TokenRefreshResult
from workflows.token_refresh import TokenRefresh


async def _refresh(
    stack: Stack, holder: Holder, holder_id: uuid.UUID, record: str | None = None
) -> TokenRefreshResult:
    handle = await stack.client.start_workflow(
        TokenRefresh.run,
        TokenRefreshInput(holder=holder, holder_id=holder_id),
        id=f"token-refresh-test-{uuid.uuid4()}",
        task_queue=stack.settings.temporal_task_queue,
    )
    result = await handle.result()
    if record:
        await record_history(handle, record)
    return result


async def _now(env: WorkflowEnvironment, stack: Stack) -> datetime:
    """The server's time, which the emulated platforms take too."""
    now = await env.get_current_time()
    stack.emulators.clock.set(now)
    return now


async def _skip(env: WorkflowEnvironment, stack: Stack, days: float) -> datetime:
    """Days pass on the server and at the emulated platforms alike."""
    before = stack.emulators.clock.now()
    await env.sleep(timedelta(days=days))
    stack.emulators.clock.set(before + timedelta(days=days))
    return before + timedelta(days=days)


async def test_a_meta_token_is_exchanged_again_a_week_before_it_expires(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        meta = stack.emulators.meta
        # A token with two months left is not due: Meta is not asked.
        start = await _now(time_env, stack)
        token = meta.issue_user_token("ana", long_lived=True)
        fresh = await add_renewing_connection(
            stack, secret={"access_token": token}, expires_at=start + LONG_LIVED
        )
        early = await _refresh(stack, "connection", fresh.id, "token_refresh_not_due")
        assert early.outcome == "not_due" and early.expires_at == start + LONG_LIVED
        assert await stored_connection_secret(stack, fresh.id) == {"access_token": token}
        assert not [r for r in meta.requests() if "oauth" in r["path"]]

        # 54 days later it has six days left: exchanged again for a new 60 days.
        start = await _now(time_env, stack)
        old = meta.issue_user_token("bo", long_lived=True)
        row = await add_renewing_connection(
            stack, account_id="7654321", secret={"access_token": old}, expires_at=start + LONG_LIVED
        )
        later = await _skip(time_env, stack, 54)
        due = await _refresh(stack, "connection", row.id, "token_refresh_refreshed")
        assert due.outcome == "refreshed"
        assert due.expires_at is not None and due.expires_at - later >= timedelta(days=59)
        new = (await stored_connection_secret(stack, row.id))["access_token"]
        assert new != old and meta.tokens.state(new) == "valid"
        stored = await stack.fetchrow(
            "SELECT token_expires_at, token_refreshed_at, credentials::text AS c "
            "FROM platform_connections WHERE id = %s",
            row.id,
        )
        assert stored is not None and stored["token_expires_at"] == due.expires_at
        assert stored["token_refreshed_at"] is not None
        assert new not in stored["c"] and old not in stored["c"]  # encrypted at rest

        # A week on, the old token has expired at Meta; the new one still works.
        stack.emulators.clock.set(later + timedelta(days=7))
        assert meta.tokens.state(old) == "expired" and meta.tokens.state(new) == "valid"


async def test_a_threads_token_is_refreshed_before_expiry_and_never_too_young(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        threads = stack.emulators.threads
        start = await _now(time_env, stack)
        owner = await add_owner(stack)
        token = threads.issue_token("lea", long_lived=True)
        account = await add_threads_account(stack, owner, token, start + timedelta(days=60))
        await _skip(time_env, stack, 55)
        due = await _refresh(stack, "threads", account.id, "token_refresh_threads")
        assert due.outcome == "refreshed"
        row = await stack.fetchrow(
            "SELECT access_token, token_expires_at FROM threads_accounts WHERE id = %s",
            account.id,
        )
        assert row is not None and row["token_expires_at"] == due.expires_at
        renewed = credential_box(stack.settings).decrypt(
            row["access_token"], threads_context(account.id)
        )
        assert renewed != token and threads.tokens.state(renewed) == "valid"
        assert token not in row["access_token"] and renewed not in row["access_token"]

        # A token refreshed less than a day ago is not sent to Threads again, even when the
        # row says it expires soon (an app that wrote a short expiry).
        calls = len(threads.requests())
        async with stack.pool.connection() as conn:
            await conn.execute(
                "UPDATE threads_accounts SET token_expires_at = %s, token_refreshed_at = %s "
                "WHERE id = %s",
                (await time_env.get_current_time() + timedelta(days=2),
                 await time_env.get_current_time(), account.id),
            )  # fmt: skip
        young = await _refresh(stack, "threads", account.id)
        assert young.outcome == "not_due" and "24 hours" in (young.reason or "")
        assert len(threads.requests()) == calls
