"""Who sees notification rows: a user their own channels (never a secret) and the
deliveries of their own events; not another's; anon nothing. Organization channels."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from activities.notifications import raise_event, store_channel
from db import notifications
from tests.db.factories import insert_user
from tests.harness import running_stack
from tests.notifications.test_delivery import BOX, event, new_user
from tests.security.rls_helpers import migrate_as_supabase, signed_in
from tests.waiting import eventually


async def _two_users_with_rows(pool: AsyncConnectionPool) -> tuple[uuid.UUID, uuid.UUID]:
    async with pool.connection() as conn:
        alice, bob = await insert_user(conn), await insert_user(conn)
    for user in (alice, bob):
        await store_channel(
            pool, BOX, kind="slack_bot", user_id=user, secret="xoxb-" + "1" * 20, slack_channel="C1"
        )
        async with pool.connection() as conn:
            await notifications.enqueue_deliveries(
                conn, event_key=f"job.failed/{uuid.uuid4()}", event_type="job.failed",
                user_id=user, org_id=None, entity_type="job", entity_id=uuid.uuid4(),
                event_data={}, max_attempts=5,
            )  # fmt: skip
    return alice, bob


@pytest.mark.parametrize("supabase_grants", [False, True])
async def test_a_user_sees_their_own_channels_and_deliveries_only(
    db_url: str, empty_db_url: str, supabase_grants: bool
) -> None:
    url = empty_db_url if supabase_grants else db_url
    if supabase_grants:
        await migrate_as_supabase(url)
    async with AsyncConnectionPool(url, open=False, kwargs={"row_factory": dict_row}) as pool:
        alice, bob = await _two_users_with_rows(pool)
    async with signed_in(url, "authenticated", alice) as conn:
        channels = await (
            await conn.execute("SELECT user_id FROM notification_channels")
        ).fetchall()
        queue = await (await conn.execute("SELECT user_id FROM notification_queue")).fetchall()
    assert [c["user_id"] for c in channels] == [alice] and [q["user_id"] for q in queue] == [alice]
    for forbidden in (
        "SELECT secret FROM notification_channels",
        "SELECT next_send_at FROM notification_channels",
        "UPDATE notification_channels SET secret = 'x'",
        "UPDATE notification_queue SET is_processed = true",
        "INSERT INTO notification_queue (event_key) VALUES ('forged')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with signed_in(url, "authenticated", alice) as conn:
                await conn.execute(forbidden)
    async with signed_in(url, "authenticated", alice) as conn:  # bob's rows are out of reach
        changed = await conn.execute(
            "UPDATE notification_channels SET is_active = false WHERE user_id = %s", (bob,)
        )
        assert changed.rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with signed_in(url, "anon") as conn:
            await conn.execute("SELECT id FROM notification_queue")


async def test_an_organizations_channel_gets_its_events(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id, org_id = await new_user(stack), uuid.uuid4()
        slack = stack.emulators.slack
        org_hook = slack.add_webhook(f"{stack.emulators.url}/slack", "#org")
        await store_channel(stack.pool, BOX, kind="slack_webhook", org_id=org_id, secret=org_hook)
        user_hook = slack.add_webhook(f"{stack.emulators.url}/slack", "#mine")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=user_hook
        )
        other_org = slack.add_webhook(f"{stack.emulators.url}/slack", "#other-org")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", org_id=uuid.uuid4(), secret=other_org
        )
        told = await raise_event(
            stack.pool, stack.client, event(user_id, org_id=org_id), task_queue=task_queue
        )
        assert told.deliveries == 2
        await eventually(lambda: len(slack.messages()) == 2, what="two messages")
        assert sorted(m["channel"] for m in slack.messages()) == ["#mine", "#org"]
