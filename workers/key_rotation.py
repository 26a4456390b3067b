"""`orchestrator keys rotate`: re-encrypt every stored credential under the current key.

Stored credentials are users' API keys (``user_api_keys``), ad-platform connection
tokens (``platform_connections.credentials``), Threads tokens (``threads_accounts``) and
notification channels' secrets (``notification_channels.secret``). Each value not yet
under the current key id is decrypted (with the key its id names, or the legacy key for
``v1`` values) and encrypted again; the row is updated only if it still holds the value
that was read, and every update commits on its own. So a run can be stopped at any point
and run again: it skips what is already current, and a second run changes nothing. It
reports counts and the places it could not read, never a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from pydantic import BaseModel

from activities.credentials import CredentialBox, DecryptionError
from activities.higgsfield import key_context
from activities.metric_sync import credentials_context
from activities.notifications import channel_context
from activities.token_refresh import threads_context
from db import credentials
from db.credentials import StoredCredential
from db.pool import Pool

BATCH = 200


class TableRotation(BaseModel):
    """What one run did to one table."""

    table: str
    reencrypted: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0  # written by someone else between read and update: rerun
    unreadable: list[str] = []  # the places (table and row), with why


@dataclass(frozen=True)
class _Table:
    name: credentials.Table
    context: Callable[[StoredCredential], str]


def _user_key_context(row: StoredCredential) -> str:
    assert row.user_id is not None and row.service is not None  # both NOT NULL
    return key_context(row.user_id, row.service)


TABLES = [
    _Table("user_api_keys", context=_user_key_context),
    _Table("threads_accounts", context=lambda row: threads_context(row.id)),
    _Table("platform_connections", context=lambda row: credentials_context(row.id)),
    _Table("notification_channels", context=lambda row: channel_context(row.id)),
]


async def rotate_credentials(pool: Pool, box: CredentialBox) -> list[TableRotation]:
    """Re-encrypt every stored credential not yet under ``box``'s current key."""
    return [await _rotate_table(pool, box, table) for table in TABLES]


async def _rotate_table(pool: Pool, box: CredentialBox, table: _Table) -> TableRotation:
    result = TableRotation(table=table.name)
    after: UUID | None = None
    while True:
        async with pool.connection() as conn:
            rows = await credentials.credentials_batch(conn, table.name, after=after, limit=BATCH)
        if not rows:
            return result
        for row in rows:
            await _rotate_row(pool, box, table, row, result)
        after = rows[-1].id


async def _rotate_row(
    pool: Pool, box: CredentialBox, table: _Table, row: StoredCredential, result: TableRotation
) -> None:
    old = row.ciphertext
    if old is None:
        result.unreadable.append(f"{table.name} {row.id}: no ciphertext")
        return
    try:
        new = box.reencrypt(old, table.context(row))
    except DecryptionError as exc:
        result.unreadable.append(f"{table.name} {row.id}: {exc}")
        return
    if new is None:
        result.already_current += 1
        return
    async with pool.connection() as conn:  # autocommit: each row on its own
        replaced = await credentials.replace_credential(conn, table.name, row.id, old, new)
    if replaced:
        result.reencrypted += 1
    else:
        result.changed_meanwhile += 1
