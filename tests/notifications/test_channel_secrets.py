"""Channel secrets (Slack webhook URLs and bot tokens) are stored encrypted, bound to
their row, and re-encrypted by `orchestrator keys rotate`."""

from __future__ import annotations

import pytest
from psycopg_pool import AsyncConnectionPool

from activities.credentials import DecryptionError
from activities.notifications import channel_context, store_channel
from tests.db.factories import insert_user
from tests.security.test_keys import A, B, _rotate, ring

WEBHOOK = "https://hooks.slack.com/services/T0000/B0000/" + "s" * 24


async def test_channel_secret_is_encrypted_bound_and_rotated(
    db_url: str, pool: AsyncConnectionPool
) -> None:
    async with pool.connection() as conn:
        user_id = await insert_user(conn)
    old_box = ring(A).credential_box()
    channel = await store_channel(
        pool, old_box, kind="slack_webhook", user_id=user_id, secret=WEBHOOK
    )
    other = await store_channel(
        pool,
        old_box,
        kind="slack_bot",
        user_id=user_id,
        secret="xoxb-" + "9" * 20,
        slack_channel="C1",
    )
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT secret FROM notification_channels WHERE id = %s", (channel,))
        ).fetchone()
    assert row is not None and WEBHOOK not in row["secret"]
    assert old_box.decrypt(row["secret"], channel_context(channel)) == WEBHOOK
    with pytest.raises(DecryptionError):  # copied to another row, it does not decrypt
        old_box.decrypt(row["secret"], channel_context(other))

    rotated = _rotate(db_url, B, A)
    assert rotated.returncode == 0, rotated.stderr
    assert "notification_channels: 2 re-encrypted" in rotated.stdout
    assert WEBHOOK not in rotated.stdout + rotated.stderr
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT secret FROM notification_channels WHERE id = %s", (channel,))
        ).fetchone()
    new_box = ring(B).credential_box()
    assert row is not None and new_box.is_current(row["secret"])
    assert new_box.decrypt(row["secret"], channel_context(channel)) == WEBHOOK
