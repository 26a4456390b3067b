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
        user_id, org_id, stranger = await new_user(stack), uuid.uuid4(), uuid.uuid4()
        async with stack.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO organizations (id, name) VALUES (%s, 'Ours'), (%s, 'Theirs')",
                (org_id, stranger),
            )
        slack = stack.emulators.slack
        org_hook = slack.add_webhook(f"{stack.emulators.url}/slack", "#org")
        await store_channel(stack.pool, BOX, kind="slack_webhook", org_id=org_id, secret=org_hook)
        user_hook = slack.add_webhook(f"{stack.emulators.url}/slack", "#mine")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", user_id=user_id, secret=user_hook
        )
        other_org = slack.add_webhook(f"{stack.emulators.url}/slack", "#other-org")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", org_id=stranger, secret=other_org
        )
        told = await raise_event(
            stack.pool, stack.client, event(user_id, org_id=org_id), task_queue=task_queue
        )
        assert told.deliveries == 2
        await eventually(lambda: len(slack.messages()) == 2, what="two messages")
        assert sorted(m["channel"] for m in slack.messages()) == ["#mine", "#org"]


async def test_an_organizations_channels_are_read_by_members_and_changed_by_admins_only(
    db_url: str,
) -> None:
    """Org A: ana admin, max member; org B: bo admin. Ana's channel for A is read by max
    (not its secret), changed or removed by neither max nor bo, and changed by ana; its
    deliveries are read by A's members only."""
    async with AsyncConnectionPool(db_url, open=False, kwargs={"row_factory": dict_row}) as pool:
        async with pool.connection() as conn:
            ana, max_, bo = [await insert_user(conn) for _ in range(3)]
        org_a, org_b = uuid.uuid4(), uuid.uuid4()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO organizations (id, name) VALUES (%s, 'A'), (%s, 'B')", (org_a, org_b)
            )
            await conn.execute(
                "INSERT INTO team_members (org_id, user_id, role) VALUES "
                "(%s, %s, 'admin'), (%s, %s, 'member'), (%s, %s, 'admin')",
                (org_a, ana, org_a, max_, org_b, bo),
            )
        channel = await store_channel(
            pool, BOX, kind="slack_bot", org_id=org_a, secret="xoxb-" + "2" * 20, slack_channel="C9"
        )
        async with pool.connection() as conn:
            await notifications.enqueue_deliveries(
                conn, event_key=f"job.failed/{uuid.uuid4()}", event_type="job.failed",
                user_id=None, org_id=org_a, entity_type="job", entity_id=uuid.uuid4(),
                event_data={}, max_attempts=5,
            )  # fmt: skip

    async def seen(user: uuid.UUID) -> tuple[int, int]:
        async with signed_in(db_url, "authenticated", user) as conn:
            channels = await (
                await conn.execute(
                    "SELECT id FROM notification_channels WHERE org_id = %s", (org_a,)
                )
            ).fetchall()
            queue = await (
                await conn.execute("SELECT id FROM notification_queue WHERE org_id = %s", (org_a,))
            ).fetchall()
        return len(channels), len(queue)

    assert await seen(max_) == (1, 1) and await seen(ana) == (1, 1)
    assert await seen(bo) == (0, 0)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with signed_in(db_url, "authenticated", max_) as conn:
            await conn.execute("SELECT secret FROM notification_channels")
    for outsider in (max_, bo):  # a plain member, another organization's admin
        async with signed_in(db_url, "authenticated", outsider) as conn:
            for write in (
                "UPDATE notification_channels SET is_active = false WHERE id = %s",
                "UPDATE notification_channels SET events = '{job.failed}' WHERE id = %s",
                "DELETE FROM notification_channels WHERE id = %s",
            ):
                assert (await conn.execute(write, (channel,))).rowcount == 0
    async with signed_in(db_url, "authenticated", ana) as conn:
        done = await conn.execute(
            "UPDATE notification_channels SET per_minute = 5 WHERE id = %s", (channel,)
        )
        assert done.rowcount == 1


async def test_an_event_reaches_the_organization_of_the_row_it_is_about(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No organization given: the job's own (its owner's organization of one here) hears."""
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        user_id = await new_user(stack)
        row = await stack.fetchrow(
            "INSERT INTO jobs (user_id, title) VALUES (%s, 'Org job') RETURNING id, org_id",
            user_id,
        )
        assert row is not None and row["org_id"] is not None
        slack = stack.emulators.slack
        hook = slack.add_webhook(f"{stack.emulators.url}/slack", "#team")
        await store_channel(
            stack.pool, BOX, kind="slack_webhook", org_id=row["org_id"], secret=hook
        )
        told = await raise_event(
            stack.pool,
            stack.client,
            event(
                user_id, entity_type="job", entity_id=row["id"], event_type="job.failed"
            ).model_copy(update={"user_id": None}),
            task_queue=task_queue,
        )
        assert told.deliveries == 1
        await eventually(lambda: len(slack.messages()) == 1, what="the team's message")
        queued = await stack.fetchrow("SELECT org_id FROM notification_queue")
        assert queued is not None and queued["org_id"] == row["org_id"]
