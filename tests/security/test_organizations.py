"""Organizations (issue 27, seed 004): rows carry org_id, members read their
organizations' rows and nobody else's, rows inserted by a user stay inside their
organizations, only admins change members and approval routes, and a database with rows
from before the migration keeps every row, each in its owner's organization of one."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncConnection, errors, sql
from psycopg.rows import dict_row

from db.migrate import MIGRATIONS_DIR, migrate
from tests.db.factories import insert_user
from tests.security.rls_helpers import seed_tenant, seed_world, signed_in
from tests.security.test_rls import _check_isolation

# Tables that carry org_id, and how their rows were owned before organizations.
ORG_TABLES = {
    "jobs": "user_id",
    "approvals": "(SELECT user_id FROM public.jobs j WHERE j.id = job_id)",
    "generations": "user_id",
    "platform_connections": "created_by",
    "performance_metrics": "(SELECT created_by FROM public.platform_connections c "
    "WHERE c.id = platform_connection_id)",
    "metric_sync_logs": "(SELECT created_by FROM public.platform_connections c "
    "WHERE c.id = platform_connection_id)",
}


APPROVAL_TABLES = ["approval_approvers", "approval_votes", "approval_escalations"]


def _before_organizations(tmp_path: Path) -> Path:
    """The migrations as they were before 0027."""
    target = tmp_path / "before"
    shutil.copytree(MIGRATIONS_DIR, target)
    for path in target.glob("*.sql"):
        if path.name >= "0027":
            path.unlink()
    return target


async def _count(conn: AsyncConnection[Any], table: str) -> int:
    cur = await conn.execute(
        sql.SQL("SELECT count(*) AS n FROM public.{}").format(sql.Identifier(table))
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_rows_from_before_move_to_their_owners_organization_of_one(
    empty_db_url: str, tmp_path: Path
) -> None:
    await migrate(empty_db_url, _before_organizations(tmp_path))
    alice, bob = await seed_world(empty_db_url)
    async with await AsyncConnection.connect(empty_db_url, row_factory=dict_row) as conn:
        before = {t: await _count(conn, t) for t in ORG_TABLES}
    assert all(before.values())

    applied = await migrate(empty_db_url)
    assert "0027_organizations.sql" in applied

    async with await AsyncConnection.connect(empty_db_url, row_factory=dict_row) as conn:
        assert {t: await _count(conn, t) for t in ORG_TABLES} == before
        for table, owner in ORG_TABLES.items():
            cur = await conn.execute(
                f"SELECT t.org_id, {owner} AS owner, o.personal_for FROM public.{table} t "
                "LEFT JOIN public.organizations o ON o.id = t.org_id"
            )
            for row in await cur.fetchall():
                assert row["org_id"] is not None, table
                assert row["personal_for"] == row["owner"], table
        for user in (alice.user_id, bob.user_id):
            cur = await conn.execute(
                "SELECT m.role FROM public.team_members m JOIN public.organizations o "
                "ON o.id = m.org_id WHERE o.personal_for = %s AND m.user_id = %s",
                (user, user),
            )
            assert [r["role"] for r in await cur.fetchall()] == ["admin"]
    # Each person still sees exactly their own rows, and writes nobody else's.
    await _check_isolation(empty_db_url, alice.user_id, bob.user_id)


async def test_a_new_profile_gets_an_organization_of_one(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        user = await insert_user(c)
        cur = await c.execute(
            "SELECT o.id, m.role FROM public.organizations o JOIN public.team_members m "
            "ON m.org_id = o.id AND m.user_id = o.personal_for WHERE o.personal_for = %s",
            (user,),
        )
        rows = await cur.fetchall()
        assert [r["role"] for r in rows] == ["admin"]
        await c.execute(
            "INSERT INTO public.jobs (user_id, title) VALUES (%s, 'solo') RETURNING org_id",
            (user,),
        )
        cur = await c.execute("SELECT org_id FROM public.jobs WHERE user_id = %s", (user,))
        job = await cur.fetchone()
        assert job is not None and job["org_id"] == rows[0]["id"]


class Agency:
    """Org A (alice admin, carol member) with alice's rows in it; org B (bob admin)."""

    def __init__(self, alice: Any, bob: Any, carol: uuid.UUID, org_a: uuid.UUID, org_b: uuid.UUID):
        self.alice, self.bob, self.carol = alice, bob, carol
        self.org_a, self.org_b = org_a, org_b


async def _agency(db_url: str) -> Agency:
    async with await AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        alice, bob = await seed_tenant(c), await seed_tenant(c)
        carol = await insert_user(c)
        org_a, org_b = uuid.uuid4(), uuid.uuid4()
        await c.execute(
            "INSERT INTO public.organizations (id, name) VALUES (%s, 'A'), (%s, 'B')",
            (org_a, org_b),
        )
        await c.execute(
            "INSERT INTO public.team_members (org_id, user_id, role) VALUES "
            "(%s, %s, 'admin'), (%s, %s, 'member'), (%s, %s, 'admin')",
            (org_a, alice.user_id, org_a, carol, org_b, bob.user_id),
        )
        await c.execute(
            "INSERT INTO public.approval_routes (org_id, action_type, approver_roles, quorum) "
            "VALUES (%s, 'delete', '{admin,manager}', 1)",
            (org_a,),
        )
        # alice's work belongs to the agency; bob's to his own team.
        for table in ("jobs", "approvals", "generations", "platform_connections"):
            await c.execute(
                sql.SQL(
                    "UPDATE public.{} SET org_id = %s WHERE org_id = "
                    "(SELECT id FROM public.organizations WHERE personal_for = %s)"
                ).format(sql.Identifier(table)),
                (org_a, alice.user_id),
            )
            await c.execute(
                sql.SQL(
                    "UPDATE public.{} SET org_id = %s WHERE org_id = "
                    "(SELECT id FROM public.organizations WHERE personal_for = %s)"
                ).format(sql.Identifier(table)),
                (org_b, bob.user_id),
            )
        for tenant in (alice, bob):  # a seat, a vote and an escalation on each approval
            await c.execute(
                "INSERT INTO approval_approvers (approval_id, seat, org_id, email, asked_because) "
                "SELECT id, 0, org_id, 'x@agency.test', 'route' FROM approvals WHERE id = %s",
                (tenant.approval_id,),
            )
            await c.execute(
                "INSERT INTO approval_votes (approval_id, org_id, voter, decision, channel) "
                "SELECT id, org_id, 'x@agency.test', 'approve', 'email' FROM approvals "
                "WHERE id = %s",
                (tenant.approval_id,),
            )
            await c.execute(
                "INSERT INTO approval_escalations (approval_id, number, org_id, cause, reason, "
                "tier) SELECT id, 1, org_id, 'no_decision', 'x', 'none' FROM approvals "
                "WHERE id = %s",
                (tenant.approval_id,),
            )
        for table in ("performance_metrics", "metric_sync_logs"):
            await c.execute(
                sql.SQL(
                    "UPDATE public.{} t SET org_id = c.org_id FROM public.platform_connections c "
                    "WHERE c.id = t.platform_connection_id"
                ).format(sql.Identifier(table))
            )
    return Agency(alice, bob, carol, org_a, org_b)


async def _orgs_visible(conn: AsyncConnection[Any], table: str) -> set[uuid.UUID]:
    async with conn.transaction():
        cur = await conn.execute(
            sql.SQL("SELECT org_id FROM public.{}").format(sql.Identifier(table))
        )
        return {r["org_id"] for r in await cur.fetchall()}


async def test_members_read_their_organizations_rows_and_no_others(db_url: str) -> None:
    agency = await _agency(db_url)
    for reader, mine, theirs in (
        (agency.carol, agency.org_a, agency.org_b),  # a plain member of A
        (agency.alice.user_id, agency.org_a, agency.org_b),
        (agency.bob.user_id, agency.org_b, agency.org_a),
    ):
        async with signed_in(db_url, "authenticated", reader) as conn:
            for table in [*ORG_TABLES, *APPROVAL_TABLES]:
                seen = await _orgs_visible(conn, table)
                assert mine in seen, f"{table}: {reader} misses their organization's rows"
                assert theirs not in seen, f"{table}: {reader} reads another organization's"
            orgs = await _orgs_visible_orgs(conn)
            assert mine in orgs and theirs not in orgs
            cur = await conn.execute("SELECT DISTINCT org_id FROM public.team_members")
            assert theirs not in {r["org_id"] for r in await cur.fetchall()}


async def _orgs_visible_orgs(conn: AsyncConnection[Any]) -> set[uuid.UUID]:
    cur = await conn.execute("SELECT id FROM public.organizations")
    return {r["id"] for r in await cur.fetchall()}


# What bob (admin of B) tries against organization A; each must change nothing.
CROSS_ORG_WRITES = [
    "INSERT INTO public.jobs (user_id, title, org_id) VALUES (%(me)s, 'x', %(org)s)",
    "INSERT INTO public.generations (user_id, prompt_text, org_id) VALUES (%(me)s, 'x', %(org)s)",
    "INSERT INTO public.platform_connections (created_by, platform, account_id, org_id) "
    "VALUES (%(me)s, 'meta', '9', %(org)s)",
    "INSERT INTO public.team_members (org_id, user_id, role) VALUES (%(org)s, %(me)s, 'admin')",
    "INSERT INTO public.approval_routes (org_id, action_type, approver_roles) "
    "VALUES (%(org)s, 'payment', '{member}')",
    "UPDATE public.jobs SET cancel_requested_at = now() WHERE org_id = %(org)s",
    "UPDATE public.generations SET cancel_requested_at = now() WHERE org_id = %(org)s",
    "UPDATE public.platform_connections SET is_active = false WHERE org_id = %(org)s",
    "UPDATE public.team_members SET role = 'member' WHERE org_id = %(org)s",
    "UPDATE public.organizations SET name = 'mine' WHERE id = %(org)s",
    "UPDATE public.approval_routes SET quorum = 1 WHERE org_id = %(org)s",
    "DELETE FROM public.team_members WHERE org_id = %(org)s",
    "DELETE FROM public.platform_connections WHERE org_id = %(org)s",
    "DELETE FROM public.generations WHERE org_id = %(org)s",
    "UPDATE public.jobs SET org_id = %(mine)s WHERE org_id = %(org)s",
    "INSERT INTO public.approval_votes (approval_id, voter, decision, channel) "
    "SELECT id, 'me@x.test', 'approve', 'app' FROM public.approvals",
    "UPDATE public.approval_votes SET decision = 'reject'",
    "DELETE FROM public.approval_votes",
    "UPDATE public.approval_approvers SET email = 'me@x.test'",
    "DELETE FROM public.approval_escalations",
]


async def _refused_or_nothing(
    conn: AsyncConnection[Any], query: str, params: dict[str, Any]
) -> None:
    """The statement is refused, or reaches no row."""
    try:
        async with conn.transaction():
            cur = await conn.execute(query, params)
            assert cur.rowcount == 0, f"changed {cur.rowcount} row(s): {query}"
    except (errors.InsufficientPrivilege, errors.CheckViolation):
        pass


async def _snapshot(db_url: str) -> dict[str, Any]:
    async with await AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        found = {}
        for table in (
            *ORG_TABLES,
            *APPROVAL_TABLES,
            "team_members",
            "organizations",
            "approval_routes",
        ):
            cur = await conn.execute(
                sql.SQL(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                    "AS d FROM public.{} t"
                ).format(sql.Identifier(table))
            )
            row = await cur.fetchone()
            assert row is not None
            found[table] = row["d"]
        return found


async def test_nobody_writes_another_organizations_rows(db_url: str) -> None:
    agency = await _agency(db_url)
    before = await _snapshot(db_url)
    async with signed_in(db_url, "authenticated", agency.bob.user_id) as conn:
        for query in CROSS_ORG_WRITES:
            params = {"me": agency.bob.user_id, "org": agency.org_a, "mine": agency.org_b}
            await _refused_or_nothing(conn, query, params)
    assert await _snapshot(db_url) == before


ADMIN_ONLY = [
    "INSERT INTO public.team_members (org_id, user_id, role) VALUES (%(org)s, %(other)s, 'member')",
    "UPDATE public.team_members SET role = 'admin' WHERE org_id = %(org)s AND user_id = %(me)s",
    "UPDATE public.team_members SET backup_approver = true WHERE org_id = %(org)s",
    "DELETE FROM public.team_members WHERE org_id = %(org)s AND user_id <> %(me)s",
    "INSERT INTO public.approval_routes (org_id, action_type, approver_roles) "
    "VALUES (%(org)s, 'payment', '{member}')",
    "UPDATE public.organizations SET name = 'renamed' WHERE id = %(org)s",
]


async def test_a_plain_member_cannot_do_what_only_admins_may(db_url: str) -> None:
    agency = await _agency(db_url)
    before = await _snapshot(db_url)
    params = {"org": agency.org_a, "me": agency.carol, "other": agency.bob.user_id}
    async with signed_in(db_url, "authenticated", agency.carol) as conn:
        for query in ADMIN_ONLY:
            await _refused_or_nothing(conn, query, params)
    assert await _snapshot(db_url) == before
    # The admin may.
    params["me"] = agency.alice.user_id
    async with signed_in(db_url, "authenticated", agency.alice.user_id) as conn:
        for query in ADMIN_ONLY[:1] + ADMIN_ONLY[4:]:
            cur = await conn.execute(query, params)
            assert cur.rowcount == 1, query
        cur = await conn.execute(
            "UPDATE public.team_members SET role = 'manager' WHERE org_id = %(org)s "
            "AND user_id = %(c)s",
            {"org": agency.org_a, "c": agency.carol},
        )
        assert cur.rowcount == 1


async def test_a_member_puts_their_own_work_in_their_team(db_url: str) -> None:
    agency = await _agency(db_url)
    async with signed_in(db_url, "authenticated", agency.carol) as conn:
        cur = await conn.execute(
            "INSERT INTO public.jobs (user_id, title, org_id) VALUES (%s, 'team work', %s) "
            "RETURNING id",
            (agency.carol, agency.org_a),
        )
        assert await cur.fetchone() is not None
        # Someone else's name on it is refused even inside the team.
        with pytest.raises(errors.InsufficientPrivilege):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO public.jobs (user_id, title, org_id) VALUES (%s, 'x', %s)",
                    (agency.alice.user_id, agency.org_a),
                )
    async with signed_in(db_url, "authenticated", agency.alice.user_id) as conn:
        cur = await conn.execute("SELECT title FROM public.jobs WHERE title = 'team work'")
        assert [r["title"] for r in await cur.fetchall()] == ["team work"]
    async with signed_in(db_url, "authenticated", agency.bob.user_id) as conn:
        cur = await conn.execute("SELECT title FROM public.jobs WHERE title = 'team work'")
        assert await cur.fetchall() == []


async def test_create_organization_makes_the_caller_its_admin(db_url: str) -> None:
    agency = await _agency(db_url)
    async with signed_in(db_url, "authenticated", agency.carol) as conn:
        cur = await conn.execute("SELECT public.create_organization('Carol & Co') AS id")
        row = await cur.fetchone()
        assert row is not None
        assert await conn.execute("SELECT public.org_role(%s) AS r", (row["id"],))
        cur = await conn.execute("SELECT public.org_role(%s) AS r", (row["id"],))
        assert (await cur.fetchone()) == {"r": "admin"}
    async with signed_in(db_url, "anon") as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("SELECT public.create_organization('x')")


async def _admins(db_url: str, org: uuid.UUID) -> list[uuid.UUID]:
    async with await AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        rows = await (
            await c.execute(
                "SELECT user_id FROM public.team_members WHERE org_id = %s AND role = 'admin'",
                (org,),
            )
        ).fetchall()
    return [r["user_id"] for r in rows]


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM public.team_members WHERE org_id = %(org)s AND user_id = %(me)s",
        "UPDATE public.team_members SET role = 'member' WHERE org_id = %(org)s "
        "AND user_id = %(me)s",
        "UPDATE public.team_members SET role = 'manager' WHERE org_id = %(org)s",
    ],
)
async def test_the_last_admin_can_neither_leave_nor_step_down(db_url: str, query: str) -> None:
    """Signed in or as the back end: refused with the reason, the admin stays."""
    agency = await _agency(db_url)
    params = {"org": agency.org_a, "me": agency.alice.user_id}
    with pytest.raises(errors.CheckViolation, match="keeps at least one admin"):
        async with signed_in(db_url, "authenticated", agency.alice.user_id) as conn:
            await conn.execute(query, params)
    with pytest.raises(errors.CheckViolation, match="keeps at least one admin"):
        async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute(query, params)
    assert await _admins(db_url, agency.org_a) == [agency.alice.user_id]


async def test_an_admin_leaves_once_another_is_made_and_deletions_still_cascade(
    db_url: str,
) -> None:
    agency = await _agency(db_url)
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE public.team_members SET role = 'admin' WHERE org_id = %s AND user_id = %s",
            (agency.org_a, agency.carol),
        )
        await conn.execute(
            "DELETE FROM public.team_members WHERE org_id = %s AND user_id = %s",
            (agency.org_a, agency.alice.user_id),
        )
        assert await _admins(db_url, agency.org_a) == [agency.carol]
        # The last admin's account deleted: the membership goes with it (never blocked).
        await conn.execute("DELETE FROM auth.users WHERE id = %s", (agency.carol,))
        assert await _admins(db_url, agency.org_a) == []
        # An organization deleted takes its only admin's membership along.
        await conn.execute("DELETE FROM public.organizations WHERE id = %s", (agency.org_b,))
        assert await _admins(db_url, agency.org_b) == []
