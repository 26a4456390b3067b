"""``rpc/list_jobs``, ``rpc/list_approvals`` and ``rpc/list_generations`` (0035) restate the
read policies outside row level security (SECURITY DEFINER, to read in index order). They
are held to the policies: every reader, every filter, every page size, page after page,
the same rows as the table read through row level security; and what no reader may do
(anon, no one signed in, a bad argument, an injected status) changes nothing or is
refused."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from tests.db.factories import insert_user
from tests.security.rls_helpers import migrate_as_supabase, sign_in, signed_in

TABLES = ("jobs", "approvals", "generations")


class World:
    """An organization X of alice (admin), bob and dave (members, dave with no rows of
    his own); carol, who had rows in X and left it; eve, who was never in it. Rows of X
    without an owner; each user's rows in their organization of one; rows written in one
    statement share a created_at (ties a page boundary must not split wrongly)."""

    def __init__(self, **people: uuid.UUID) -> None:
        self.people = people
        self.org = uuid.uuid4()


async def _rows(
    conn: AsyncConnection[Any], owner: uuid.UUID, org: uuid.UUID | None, n: int
) -> None:
    """``n`` jobs (each with an approval, every other one pending) and ``n`` generations of
    ``owner`` in ``org`` (NULL: their organization of one), three to a created_at."""
    jobs = await (
        await conn.execute(
            "INSERT INTO public.jobs (user_id, org_id, title, created_at) "
            "SELECT %s, coalesce(%s, public.personal_org(%s)), 'listed', "
            "       now() - (i / 3) * interval '1 minute' "
            "FROM generate_series(1, %s) AS i RETURNING id, created_at",
            (owner, org, owner, n),
        )
    ).fetchall()
    for i, (job_id, created_at) in enumerate(jobs):
        await conn.execute(
            "INSERT INTO public.approvals (job_id, description, created_at) "
            "VALUES (%s, 'delete', %s)",
            (job_id, created_at),
        )
        if i % 2 == 0:
            await conn.execute(
                "UPDATE public.approvals SET status = 'approved' WHERE job_id = %s", (job_id,)
            )
    await conn.execute(
        "INSERT INTO public.generations (user_id, org_id, prompt_text, model, created_at) "
        "SELECT %s, coalesce(%s, public.personal_org(%s)), 'listed', 'soul', "
        "       now() - (i / 3) * interval '1 minute' FROM generate_series(1, %s) AS i",
        (owner, org, owner, n),
    )


@pytest.fixture
async def world(db_url: str) -> World:
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        names = ("alice", "bob", "carol", "dave", "eve")
        w = World(**{name: await insert_user(conn) for name in names})
        p = w.people
        await conn.execute("INSERT INTO public.organizations (id, name) VALUES (%s, 'X')", (w.org,))
        for name, role in (("alice", "admin"), ("bob", "member"), ("carol", "member")):
            await conn.execute(
                "INSERT INTO public.team_members (org_id, user_id, role) VALUES (%s, %s, %s)",
                (w.org, p[name], role),
            )
        await conn.execute(
            "INSERT INTO public.team_members (org_id, user_id, role) VALUES (%s, %s, 'member')",
            (w.org, p["dave"]),
        )
        for owner, org, n in (
            (p["alice"], w.org, 7),
            (p["bob"], w.org, 6),
            (p["carol"], w.org, 4),
            (p["alice"], None, 5),
            (p["bob"], None, 3),
            (p["carol"], None, 2),
            (p["eve"], None, 4),
        ):
            await _rows(conn, owner, org, n)
        # Rows of X without an owner (the app's older rows), members read them.
        await conn.execute(
            "INSERT INTO public.jobs (user_id, org_id, title) VALUES (NULL, %s, 'ownerless')",
            (w.org,),
        )
        await conn.execute(
            "DELETE FROM public.team_members WHERE org_id = %s AND user_id = %s",
            (w.org, p["carol"]),
        )
    return w


async def _through_policies(
    conn: AsyncConnection[Any], table: str, org: uuid.UUID | None, status: str | None
) -> list[uuid.UUID]:
    query = sql.SQL(
        "SELECT id FROM public.{} WHERE (%(org)s::uuid IS NULL OR org_id = %(org)s) "
        "AND (%(status)s::text IS NULL OR status = %(status)s) "
        "ORDER BY created_at DESC, id DESC"
    ).format(sql.Identifier(table))
    rows = await (await conn.execute(query, {"org": org, "status": status})).fetchall()
    return [r["id"] for r in rows]


async def _page(
    conn: AsyncConnection[Any],
    table: str,
    org: uuid.UUID | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    size: int,
) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT id, created_at FROM public.{}(org_id => %(org)s, status => %(status)s, "
        "before => %(before)s, before_id => %(before_id)s, page_size => %(size)s)"
    ).format(sql.Identifier(f"list_{table}"))
    params = {
        "org": org,
        "status": status,
        "before": after[0] if after else None,
        "before_id": after[1] if after else None,
        "size": size,
    }
    return await (await conn.execute(query, params)).fetchall()


async def _every_page(
    conn: AsyncConnection[Any], table: str, org: uuid.UUID | None, status: str | None, size: int
) -> list[uuid.UUID]:
    """Page after page (each one's last row the next one's cursor) until an empty one."""
    listed: list[uuid.UUID] = []
    after = None
    while rows := await _page(conn, table, org, status, after, size):
        assert len(rows) <= size
        listed += [r["id"] for r in rows]
        after = (rows[-1]["created_at"], rows[-1]["id"])
        assert len(listed) < 1000, "the pages never end"
    return listed


READERS = ("alice", "bob", "carol", "dave", "eve", "a stranger", "no one")


@pytest.mark.parametrize("table", TABLES)
async def test_every_reader_lists_what_the_policies_let_them_read(
    db_url: str, world: World, table: str
) -> None:
    p = world.people
    orgs = {
        "no organization": None,
        "X": world.org,
        "alice's own": None,  # filled below: her organization of one
        "one that does not exist": uuid.uuid4(),
    }
    async with await AsyncConnection.connect(db_url) as conn:
        row = await (await conn.execute("SELECT public.personal_org(%s)", (p["alice"],))).fetchone()
        assert row is not None
        orgs["alice's own"] = row[0]
    seen: dict[tuple[str, str, str | None], list[uuid.UUID]] = {}
    for reader in READERS:
        user = p.get(reader, uuid.uuid4() if reader == "a stranger" else None)
        async with signed_in(db_url, "authenticated", user) as conn:
            for org_name, org in orgs.items():
                for status in (None, "pending", "pending' OR 'x' = 'x"):
                    expected = await _through_policies(conn, table, org, status)
                    for size in (1, 4, 50):
                        listed = await _every_page(conn, table, org, status, size)
                        assert listed == expected, (reader, org_name, status, size)
                    seen[(reader, org_name, status)] = expected
    # The population reaches every case (a listing equal to an empty one proves little).
    own = {name: len(seen[(name, "no organization", None)]) for name in READERS}
    ownerless = 1 if table == "jobs" else 0
    assert own["alice"] == 7 + 5 + 6 + 4 + ownerless  # hers, and X's (carol's left there)
    assert own["carol"] == 4 + 2  # her rows in X stay hers; nobody else's in X
    assert own["dave"] == 7 + 6 + 4 + ownerless  # X's, none his own
    assert own["eve"] == 4 and own["a stranger"] == 0 and own["no one"] == 0
    assert len(seen[("carol", "X", None)]) == 4
    assert len(seen[("eve", "X", None)]) == 0
    assert len(seen[("bob", "alice's own", None)]) == 0
    assert len(seen[("alice", "alice's own", None)]) == 5
    assert all(not rows for (_, _, status), rows in seen.items() if status and "'" in status)
    if table == "approvals":
        assert 0 < len(seen[("alice", "X", "pending")]) < len(seen[("alice", "X", None)])


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        ({"page_size": 0}, "page_size must be between 1 and 1000, not 0"),
        ({"page_size": -1}, "page_size must be between 1 and 1000, not -1"),
        ({"page_size": 1001}, "page_size must be between 1 and 1000, not 1001"),
        ({"page_size": None}, "page_size must be between 1 and 1000, not <NULL>"),
        ({"before_id": uuid.uuid4()}, "before_id needs before"),
    ],
    ids=["page of 0", "negative page", "page over 1000", "page of null", "id without time"],
)
@pytest.mark.parametrize("table", TABLES)
async def test_a_bad_argument_is_refused_not_answered_with_an_empty_page(
    db_url: str, world: World, table: str, arguments: dict[str, Any], refusal: str
) -> None:
    named = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in arguments
    )
    query = sql.SQL("SELECT id FROM public.{}({})").format(sql.Identifier(f"list_{table}"), named)
    async with signed_in(db_url, "authenticated", world.people["alice"]) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=refusal):
            await conn.execute(query, arguments)


@pytest.mark.parametrize("role", ["anon", "service_role"])
@pytest.mark.parametrize("table", TABLES)
async def test_only_a_signed_in_user_may_call_a_listing(
    empty_db_url: str, role: str, table: str
) -> None:
    """On Supabase's default grants (every new function in public granted to anon)."""
    await migrate_as_supabase(empty_db_url)
    async with await AsyncConnection.connect(empty_db_url) as conn:
        user = await insert_user(conn)
        await _rows(conn, user, None, 2)
        await conn.commit()
        await sign_in(conn, role, user)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(
                sql.SQL("SELECT * FROM public.{}()").format(sql.Identifier(f"list_{table}"))
            )
        await conn.rollback()
        await sign_in(conn, "authenticated", user)
        listed = await (
            await conn.execute(
                sql.SQL("SELECT id FROM public.{}()").format(sql.Identifier(f"list_{table}"))
            )
        ).fetchall()
        assert len(listed) == 2


async def test_the_listing_helpers_are_not_callable_by_users(db_url: str, world: World) -> None:
    """orchestrator.list_rows answers for whoever is signed in; only the listings call it."""
    async with signed_in(db_url, "authenticated", world.people["eve"]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(
                "SELECT * FROM orchestrator.list_rows(NULL::public.jobs, NULL, NULL, NULL, "
                "NULL, 50)"
            )


# The read policies orchestrator.list_rows restates (0035), as pg_policies prints them: a
# policy added, dropped or changed on these tables, or a change to who is a member, must
# be made in the listings too, and this test says so.
MEMBERS_READ = "(org_id = ANY (ARRAY( SELECT member_org_ids() AS member_org_ids)))"
RESTATED_POLICIES = {
    ("jobs", "Users read their own jobs", "(user_id = auth.uid())"),
    ("jobs", "Members read their organizations' jobs", MEMBERS_READ),
    (
        "approvals",
        "Users read approvals of their own jobs",
        "(user_id = ( SELECT auth.uid() AS uid))",
    ),
    ("approvals", "Members read their organizations' approvals", MEMBERS_READ),
    ("generations", "Users read their own generations", "(user_id = auth.uid())"),
    ("generations", "Members read their organizations' generations", MEMBERS_READ),
}
RESTATED_MEMBERSHIP = "SELECT org_id FROM public.team_members WHERE user_id = auth.uid()"


async def test_the_listings_restate_every_read_policy_of_their_tables(db_url: str) -> None:
    async with await AsyncConnection.connect(db_url) as conn:
        policies = await (
            await conn.execute(
                "SELECT tablename, policyname, permissive, roles, qual FROM pg_policies "
                "WHERE schemaname = 'public' AND tablename = ANY (%s) "
                "AND cmd IN ('SELECT', 'ALL')",
                (list(TABLES),),
            )
        ).fetchall()
        membership = await (
            await conn.execute(
                "SELECT prosrc FROM pg_proc WHERE oid = 'public.member_org_ids'::regproc"
            )
        ).fetchone()
    assert {(t, n, q) for t, n, _, _, q in policies} == RESTATED_POLICIES
    assert all(p == "PERMISSIVE" and r == ["authenticated"] for _, _, p, r, _ in policies)
    assert membership is not None
    assert " ".join(membership[0].split()) == RESTATED_MEMBERSHIP


# --- the plan: ordered walks that stop at the page -----------------------------------

ROWS, OTHER_USERS = 9_000, 40  # a ninth the heavy user's, a ninth their organization's


@pytest.fixture
async def crowded(db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A heavy user with a ninth of ROWS, member of an organization whose five other
    members hold another ninth, among the rows of OTHER_USERS users; interleaved in time."""
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        heavy = await insert_user(conn)
        users = [await insert_user(conn) for _ in range(OTHER_USERS)]
        org = uuid.uuid4()
        await conn.execute("INSERT INTO public.organizations (id, name) VALUES (%s, 'H')", (org,))
        for user, role in [(heavy, "admin")] + [(u, "member") for u in users[:5]]:
            await conn.execute(
                "INSERT INTO public.team_members (org_id, user_id, role) VALUES (%s, %s, %s)",
                (org, user, role),
            )
        # Row i: the heavy user's own, the organization's (its five members), or anyone's.
        owner = (
            "CASE WHEN i %% 9 = 0 THEN %(heavy)s::uuid "
            "WHEN i %% 9 = 1 THEN (%(users)s::uuid[])[1 + i %% 5] "
            "ELSE (%(users)s::uuid[])[6 + i %% (%(n)s - 5)] END"
        )
        organization = (
            f"CASE WHEN i %% 9 = 1 THEN %(org)s::uuid ELSE public.personal_org({owner}) END"
        )
        params = {"heavy": heavy, "users": users, "n": OTHER_USERS, "org": org, "total": ROWS}
        # The statistics are taken before the heavy user's and the organization's rows
        # arrive (grown since the last ANALYZE): the estimates say they have none, and
        # must not decide the plan.
        for table in TABLES:
            await conn.execute(f"ALTER TABLE public.{table} SET (autovacuum_enabled = false)")
        for heavy_rows in (False, True):
            which = "i %% 9 IN (0, 1)" if heavy_rows else "i %% 9 NOT IN (0, 1)"
            await conn.execute(
                f"INSERT INTO public.jobs (user_id, org_id, title, created_at) "
                f"SELECT {owner}, {organization}, 'listed', now() - i * interval '1 second' "
                f"FROM generate_series(1, %(total)s) AS i WHERE {which}",
                params,
            )
            await conn.execute(
                "INSERT INTO public.approvals (job_id, description, created_at) "
                "SELECT j.id, 'listed', j.created_at FROM public.jobs j "
                "WHERE NOT EXISTS (SELECT FROM public.approvals a WHERE a.job_id = j.id)"
            )
            await conn.execute(
                f"INSERT INTO public.generations (user_id, org_id, prompt_text, model, "
                f"created_at) SELECT {owner}, {organization}, 'listed', 'soul', "
                f"now() - i * interval '1 second' FROM generate_series(1, %(total)s) AS i "
                f"WHERE {which}",
                params,
            )
            if not heavy_rows:
                # Nearly every approval decided: few pending are expected of anyone.
                await conn.execute(
                    "UPDATE public.approvals SET status = 'approved' "
                    "WHERE extract(epoch FROM created_at)::bigint % 20 <> 0"
                )
                for table in TABLES:
                    await conn.execute(f"ANALYZE public.{table}")
    return heavy, org


async def test_a_heavy_readers_page_is_read_in_index_order_not_sorted_from_all_rows(
    db_url: str, crowded: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """The listing's own statement, as auto_explain reports it: index scans only, none
    reading more than a page, though the reader may read a thousand rows or more."""
    heavy, org = crowded
    plans: list[str] = []
    async with await AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET auto_explain.log_analyze = on",
            "SET auto_explain.log_level = notice",
        ):
            await conn.execute(setting)
        await sign_in(conn, "authenticated", heavy)
        for table in TABLES:
            for by_org, status in (
                (False, None),
                (True, None),
                (False, "pending"),
                (True, "pending"),
            ):
                case = (table, "one organization" if by_org else "everything readable", status)
                plans.clear()
                query = sql.SQL("SELECT id FROM public.{}(org_id => %s, status => %s)").format(
                    sql.Identifier(f"list_{table}")
                )
                org_id = org if by_org else None
                listed = await (await conn.execute(query, (org_id, status))).fetchall()
                readable = await _through_policies(conn, table, org_id, status)
                assert len(listed) == 50, case
                assert len(readable) == ROWS // 9 * (1 if by_org else 2), case
                (inner,) = [p for p in plans if f"FROM public.{table} t" in p]
                assert "Bitmap" not in inner and "Seq Scan" not in inner, inner
                scans = re.findall(
                    rf"Index Scan(?: Backward)? using \w+ on {table} \w+ .*actual time=\S+ "
                    r"rows=([\d.]+) loops=\d+",
                    inner,
                )
                # The organization's walk, and the reader's own rows' unless one
                # organization is asked for (the reader's own rows in it are its).
                assert len(scans) == (1 if by_org else 2), (case, inner)
                # Each walk stops at the page (and the rows sharing its last created_at),
                # and reads no rows only to drop them.
                assert all(float(rows) <= 51 for rows in scans), (case, inner)
                assert "Rows Removed" not in inner, (case, inner)
