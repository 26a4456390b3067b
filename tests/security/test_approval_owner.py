"""An approval's ``user_id`` is its job's owner, set by the database (0022): whatever a
writer sends, the row names the job's owner, and the listing policy reads it. A forged
owner would show one user's approvals to another."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg import AsyncConnection

from tests.security.rls_helpers import Tenant, seed_world, signed_in


async def _owner(db_url: str, approval_id: uuid.UUID) -> uuid.UUID | None:
    async with await AsyncConnection.connect(db_url) as conn:
        row = await (
            await conn.execute("SELECT user_id FROM approvals WHERE id = %s", (approval_id,))
        ).fetchone()
    assert row is not None
    owner: uuid.UUID | None = row[0]
    return owner


async def _seen_by(db_url: str, user: uuid.UUID) -> set[uuid.UUID]:
    async with signed_in(db_url, "authenticated", user) as conn:
        rows = await (await conn.execute("SELECT id FROM public.approvals")).fetchall()
    return {r["id"] for r in rows}


async def _as_owner(db_url: str, query: str, params: tuple[Any, ...]) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(query, params)


async def test_an_approval_names_its_jobs_owner(db_url: str) -> None:
    alice, bob = await seed_world(db_url)
    assert await _owner(db_url, alice.approval_id) == alice.user_id
    assert await _seen_by(db_url, alice.user_id) == {alice.approval_id}
    assert await _seen_by(db_url, bob.user_id) == {bob.approval_id}


def _forged(alice: Tenant, bob: Tenant, approval: uuid.UUID) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        # An insert that names another owner.
        (
            "INSERT INTO approvals (id, job_id, user_id, description) VALUES (%s, %s, %s, 'x')",
            (approval, alice.job_id, bob.user_id),
        ),
        # An insert that names none.
        (
            "INSERT INTO approvals (id, job_id, user_id, description) VALUES (%s, %s, NULL, 'x')",
            (approval, alice.job_id),
        ),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["another owner", "no owner"])
async def test_an_insert_cannot_choose_the_owner(db_url: str, which: int) -> None:
    alice, bob = await seed_world(db_url)
    approval = uuid.uuid4()
    query, params = _forged(alice, bob, approval)[which]
    await _as_owner(db_url, query, params)
    assert await _owner(db_url, approval) == alice.user_id
    assert approval in await _seen_by(db_url, alice.user_id)
    assert approval not in await _seen_by(db_url, bob.user_id)


@pytest.mark.parametrize(
    ("change", "owner_after"),
    [
        ("UPDATE approvals SET user_id = %(bob)s WHERE id = %(approval)s", "alice"),
        ("UPDATE approvals SET user_id = NULL WHERE id = %(approval)s", "alice"),
        # Moved to Bob's job: Bob's, and no longer Alice's.
        ("UPDATE approvals SET job_id = %(bob_job)s WHERE id = %(approval)s", "bob"),
        # No job: nobody's.
        ("UPDATE approvals SET job_id = NULL WHERE id = %(approval)s", None),
        # A status change leaves the owner alone.
        ("UPDATE approvals SET status = 'approved' WHERE id = %(approval)s", "alice"),
    ],
)
async def test_an_update_cannot_move_an_approval_to_another_owner(
    db_url: str, change: str, owner_after: str | None
) -> None:
    alice, bob = await seed_world(db_url)
    params = {"approval": alice.approval_id, "bob": bob.user_id, "bob_job": bob.job_id}
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(change, params)
    expected = {"alice": alice.user_id, "bob": bob.user_id, None: None}[owner_after]
    assert await _owner(db_url, alice.approval_id) == expected
    assert (alice.approval_id in await _seen_by(db_url, alice.user_id)) == (owner_after == "alice")
    assert (alice.approval_id in await _seen_by(db_url, bob.user_id)) == (owner_after == "bob")


async def test_a_signed_in_user_cannot_write_the_owner(db_url: str) -> None:
    """Users only read approvals: no update of the owner column reaches a row."""
    alice, bob = await seed_world(db_url)
    with pytest.raises(Exception, match="permission denied"):
        async with signed_in(db_url, "authenticated", bob.user_id) as conn:
            await conn.execute(
                "UPDATE public.approvals SET user_id = %s WHERE id = %s",
                (bob.user_id, alice.approval_id),
            )
    assert await _owner(db_url, alice.approval_id) == alice.user_id


async def test_a_job_moved_into_a_team_takes_its_approvals_along(db_url: str) -> None:
    """The team's members read the moved job's approval; the old organization's do not."""
    alice, bob = await seed_world(db_url)
    team = uuid.uuid4()
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Team')", (team,))
        await conn.execute(
            "INSERT INTO team_members (org_id, user_id, role) VALUES (%s, %s, 'member')",
            (team, bob.user_id),
        )
        await conn.execute("UPDATE jobs SET org_id = %s WHERE id = %s", (team, alice.job_id))
    assert alice.approval_id in await _seen_by(db_url, bob.user_id)
    assert alice.approval_id in await _seen_by(db_url, alice.user_id)  # still its owner's
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        # Written directly, the approval's organization is still its job's.
        await conn.execute(
            "UPDATE approvals SET org_id = (SELECT org_id FROM jobs WHERE id = %s) WHERE id = %s",
            (bob.job_id, alice.approval_id),
        )
        row = await (
            await conn.execute("SELECT org_id FROM approvals WHERE id = %s", (alice.approval_id,))
        ).fetchone()
    assert row is not None and row[0] == team
