"""What a signed-in user may write of their own rows, and nothing more: each hostile write
is tried as the user (role authenticated, signed in as PostgREST does) and as anon, and
must fail and change nothing; what the app does must still work. Both on the migrations
as they are and on a Supabase project, whose default grants give the API roles every
table."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from tests.conftest import _with_database, create_database
from tests.security.rls_helpers import (
    Tenant,
    digest,
    migrate_as_supabase,
    seed_world,
    signed_in,
)


@dataclass(frozen=True)
class Hostile:
    """A write the signed-in user ``me`` must not make, and how it fails for them:
    ``refused`` raises; ``no_rows`` finds none of the rows it names (row level security).
    As anon every one is refused."""

    name: str
    query: str
    fails_by: Literal["refused", "no_rows"] = "refused"
    as_user: Literal["me", "newcomer"] = "me"


FORGED_RESULT = "{https://evil.example/forged.png}"
HOSTILE = [
    # Their own profile: the tier is billing's, the id is auth's.
    Hostile(
        "raise own tier", "UPDATE profiles SET subscription_tier = 'enterprise' WHERE id = %(me)s"
    ),
    Hostile(
        "create own profile with a tier",
        "INSERT INTO profiles (id, email_address, "
        "subscription_tier) VALUES (%(newcomer)s, 'n@example.com', 'pro')",
        as_user="newcomer",
    ),
    Hostile("change own profile id", "UPDATE profiles SET id = %(newcomer)s WHERE id = %(me)s"),
    Hostile(
        "edit another user's profile",
        "UPDATE profiles SET full_name = 'x' WHERE id = %(other)s",
        fails_by="no_rows",
    ),
    # Their own generations: everything after "pending" is the worker's.
    Hostile(
        "cancel own generation",
        "UPDATE generations SET status = 'cancelled' WHERE id = %(generation)s",
    ),
    Hostile(
        "move own generation on",
        "UPDATE generations SET status = 'submitting' WHERE id = %(generation)s",
    ),
    Hostile(
        "forge result urls",
        f"UPDATE generations SET result_urls = '{FORGED_RESULT}' "
        "WHERE id = %(finished_generation)s",
    ),
    Hostile(
        "forge higgsfield job id",
        "UPDATE generations SET higgsfield_job_id = 'forged' WHERE id = %(generation)s",
    ),
    Hostile(
        "forge saved assets",
        "UPDATE generations SET saved_asset_ids = "
        "ARRAY[%(other_asset)s]::uuid[] WHERE id = %(finished_generation)s",
    ),
    Hostile(
        "forge error message",
        "UPDATE generations SET error_message = 'x' WHERE id = %(finished_generation)s",
    ),
    Hostile(
        "clear the submit claim",
        "UPDATE generations SET submit_started_at = NULL WHERE id = %(generation)s",
    ),
    Hostile(
        "take a workflow id",
        "UPDATE generations SET temporal_workflow_id = 'generation-x' WHERE id = %(generation)s",
    ),
    Hostile(
        "insert a completed generation",
        "INSERT INTO generations (user_id, prompt_text, status) VALUES (%(me)s, 'x', 'completed')",
    ),
    Hostile(
        "insert a generation with results",
        "INSERT INTO generations (user_id, prompt_text, "
        f"result_urls) VALUES (%(me)s, 'x', '{FORGED_RESULT}')",
    ),
    Hostile(
        "insert a generation with a request id",
        "INSERT INTO generations (user_id, "
        "prompt_text, higgsfield_job_id) VALUES (%(me)s, 'x', 'forged')",
    ),
    Hostile(
        "insert a generation with a workflow id",
        "INSERT INTO generations (user_id, "
        "prompt_text, temporal_workflow_id) VALUES (%(me)s, 'x', 'generation-x')",
    ),
    Hostile(
        "insert a generation for another user",
        "INSERT INTO generations (user_id, prompt_text) VALUES (%(other)s, 'x')",
    ),
    Hostile(
        "generate from another user's prompt",
        "INSERT INTO generations (user_id, "
        "prompt_id, prompt_text) VALUES (%(me)s, %(other_prompt)s, 'x')",
    ),
    Hostile(
        "delete an unfinished generation",
        "DELETE FROM generations WHERE id = %(generation)s",
        fails_by="no_rows",
    ),
    # Jobs, approvals and steps: the worker's, once created.
    Hostile("cancel own job", "UPDATE jobs SET status = 'cancelled' WHERE id = %(job)s"),
    Hostile(
        "forge a job result",
        "UPDATE jobs SET result = '{}', error_message = NULL WHERE id = %(job)s",
    ),
    Hostile(
        "steer the browser session", "UPDATE jobs SET steel_session_id = 'other' WHERE id = %(job)s"
    ),
    Hostile("delete own job", "DELETE FROM jobs WHERE id = %(job)s"),
    Hostile(
        "insert a running job",
        "INSERT INTO jobs (user_id, title, status) VALUES (%(me)s, 'x', 'running')",
    ),
    Hostile(
        "insert a job with a workflow id",
        "INSERT INTO jobs (user_id, title, temporal_workflow_id) VALUES (%(me)s, 'x', 'job-x')",
    ),
    Hostile(
        "insert a job in another user's workspace",
        "INSERT INTO jobs (user_id, title, workspace_id) VALUES (%(me)s, 'x', %(other_workspace)s)",
    ),
    Hostile(
        "approve own gate",
        "UPDATE approvals SET status = 'approved', decided_by = 'me', "
        "decision_channel = 'email', decided_at = now() WHERE id = %(approval)s",
    ),
    Hostile(
        "write a decision note", "UPDATE approvals SET decision_note = 'ok' WHERE id = %(approval)s"
    ),
    Hostile("complete a step", "UPDATE job_steps SET status = 'completed' WHERE job_id = %(job)s"),
    # The transition log: the back end's alone.
    Hostile(
        "insert a transition",
        "INSERT INTO status_transitions (entity, entity_id, "
        "to_status, reason) VALUES ('jobs', %(job)s, 'completed', 'forged')",
    ),
    Hostile("rewrite a transition", "UPDATE status_transitions SET reason = 'forged'"),
    Hostile("delete transitions", "DELETE FROM status_transitions"),
    Hostile("truncate transitions", "TRUNCATE status_transitions"),
    # Browser profiles: another user's logged-in browser.
    Hostile(
        "point own workspace at another's profile",
        "UPDATE workspaces SET "
        "browser_settings = jsonb_build_object('profile_id', %(other_profile)s::text) "
        "WHERE id = %(workspace)s",
    ),
    Hostile(
        "create a workspace on another's profile",
        "INSERT INTO workspaces (user_id, "
        "platform_name, browser_settings) VALUES (%(me)s, 'Notion', "
        "jsonb_build_object('profile_id', %(other_profile)s::text))",
    ),
    Hostile(
        "claim another's profile directly",
        "INSERT INTO browser_profiles (profile_id, user_id) VALUES (%(other_profile)s, %(me)s)",
    ),
    Hostile(
        "hand a profile over",
        "UPDATE browser_profiles SET user_id = %(other)s WHERE user_id = %(me)s",
    ),
    Hostile(
        "give a workspace away",
        "UPDATE workspaces SET user_id = %(other)s WHERE id = %(workspace)s",
    ),
    Hostile(
        "point a workspace at a secret",
        "UPDATE workspaces SET credentials_vault_id = gen_random_uuid() WHERE id = %(workspace)s",
    ),
    Hostile(
        "edit another user's workspace",
        "UPDATE workspaces SET platform_name = 'x' WHERE id = %(other_workspace)s",
        fails_by="no_rows",
    ),
    # Other columns the worker owns.
    Hostile(
        "squat a memory key",
        "INSERT INTO memories (user_id, content, idempotency_key) "
        "VALUES (%(me)s, 'x', 'job-outcome-' || %(job)s::text)",
    ),
    Hostile(
        "move a sync window",
        "UPDATE platform_connections SET last_synced_at = now() WHERE id = %(connection)s",
    ),
    Hostile("write a blob", "INSERT INTO blobs (content_type, data) VALUES ('x', 'x')"),
    Hostile(
        "mark a webhook handled",
        "INSERT INTO webhook_events (provider, event_id) VALUES ('resend', 'next')",
    ),
]


def _params(me: Tenant, other: Tenant, newcomer: uuid.UUID) -> dict[str, Any]:
    """The ids of ``me``'s rows (``job_id`` and ``job`` alike) and ``other``'s
    (``other_job``), for the queries."""
    mine = asdict(me)
    theirs = {f"other_{k.removesuffix('_id')}": v for k, v in asdict(other).items()}
    short = {k.removesuffix("_id"): v for k, v in mine.items()}
    return (
        mine
        | short
        | theirs
        | {
            "me": me.user_id,
            "other": other.user_id,
            "newcomer": newcomer,
            "other_profile": other.browser_profile,
        }
    )


@pytest.fixture(scope="module", params=["migrations", "supabase"])
async def seeded_template(
    request: pytest.FixtureRequest, pg_admin_url: str, template_url: str
) -> tuple[str, dict[str, Any]]:
    """A database (as migrated, or as a Supabase project) with two users' rows, cloned for
    each test; and the hostile writes' parameters (``me`` is the second user)."""
    if request.param == "migrations":
        url = await create_database(pg_admin_url)
    else:
        url = await create_database(pg_admin_url, template=None)
        await migrate_as_supabase(url)
    other, me = await seed_world(url)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        newcomer = uuid.uuid4()  # signed up, no profile yet
        await conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (newcomer,))
        name = await (await conn.execute("SELECT current_database()")).fetchone()
    assert name is not None
    return name[0], _params(me, other, newcomer)


@pytest.fixture
async def world(
    seeded_template: tuple[str, dict[str, Any]], pg_admin_url: str
) -> tuple[str, dict[str, Any]]:
    """This test's own copy of the seeded database, and the parameters."""
    template, params = seeded_template
    return await create_database(pg_admin_url, template=template), params


async def _try(url: str, role: str, user: uuid.UUID | None, hostile: Hostile, params: Any) -> str:
    """Run the write signed in; how it ended: 'refused', 'no_rows' or 'wrote'."""
    try:
        async with signed_in(url, role, user) as conn:
            cur = await conn.execute(hostile.query, params)
            return "no_rows" if cur.rowcount == 0 else "wrote"
    except psycopg.Error as exc:
        assert exc.sqlstate in ("42501", "23514"), f"{hostile.name}: {exc.sqlstate} {exc}"
        return "refused"


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
async def test_signed_in_user_cannot(
    seeded_template: tuple[str, dict[str, Any]], pg_admin_url: str, hostile: Hostile
) -> None:
    # One database for the whole table: each write must leave it unchanged.
    name, params = seeded_template
    url = _with_database(pg_admin_url, name)
    before = await digest(url)
    user = params[hostile.as_user]
    assert await _try(url, "authenticated", user, hostile, params) == hostile.fails_by
    assert await _try(url, "anon", None, hostile, params) == "refused"
    assert await digest(url) == before


async def test_what_the_app_does_still_works(world: tuple[str, dict[str, Any]]) -> None:
    url, params = world
    me, newcomer = params["me"], params["newcomer"]
    async with signed_in(url, "authenticated", me) as conn:
        await conn.execute(
            "UPDATE profiles SET full_name = 'Bob B.', persona_config = %s WHERE id = %s",
            (Jsonb({"style": "casual"}), me),
        )
        generation = await (
            await conn.execute(
                "INSERT INTO generations (user_id, prompt_id, prompt_text, model, settings, "
                "status) VALUES (%s, %s, 'a beach', 'soul', %s, 'pending') RETURNING id, status",
                (me, params["prompt_id"], Jsonb({"quality": "high"})),
            )
        ).fetchone()
        job = await (
            await conn.execute(
                "INSERT INTO jobs (user_id, workspace_id, title, instruction, status) "
                "VALUES (%s, %s, 'Tidy', 'tidy up', 'pending') RETURNING id, status",
                (me, params["workspace_id"]),
            )
        ).fetchone()
        fresh_profile = f"steel-profile-{uuid.uuid4()}"
        await conn.execute(
            "INSERT INTO workspaces (user_id, platform_name, browser_settings) "
            "VALUES (%s, 'Linear', %s)",
            (me, Jsonb({"profile_id": fresh_profile})),
        )
        await conn.execute(
            "UPDATE workspaces SET browser_settings = %s WHERE id = %s",
            (
                Jsonb({"profile_id": params["browser_profile"], "timeout_ms": 60000}),
                params["workspace_id"],
            ),
        )
        deleted = await conn.execute(
            "DELETE FROM generations WHERE id = %s", (params["finished_generation_id"],)
        )
        await conn.execute(
            "INSERT INTO user_api_keys (user_id, service, encrypted_api_key) "
            "VALUES (%s, 'higgsfield', 'v1:new') ON CONFLICT (user_id, service) "
            "DO UPDATE SET encrypted_api_key = EXCLUDED.encrypted_api_key",
            (me,),
        )
        mine = await (
            await conn.execute("SELECT profile_id FROM browser_profiles ORDER BY created_at")
        ).fetchall()
    async with signed_in(url, "authenticated", newcomer) as conn:
        await conn.execute(
            "INSERT INTO profiles (id, full_name, email_address) VALUES (%s, 'New', %s)",
            (newcomer, f"{newcomer}@example.com"),
        )
    assert generation is not None and generation["status"] == "pending"
    assert job is not None and job["status"] == "pending"
    assert deleted.rowcount == 1
    assert {r["profile_id"] for r in mine} == {params["browser_profile"], fresh_profile}
    async with await AsyncConnection.connect(url) as conn:
        tier = await (
            await conn.execute("SELECT subscription_tier FROM profiles WHERE id = %s", (newcomer,))
        ).fetchone()
        logged = await (
            await conn.execute(
                "SELECT entity, to_status, actor_role, actor_user_id FROM status_transitions "
                "WHERE entity_id IN (%s, %s) ORDER BY id",
                (generation["id"], job["id"]),
            )
        ).fetchall()
    assert tier == ("free",)
    assert logged == [
        ("generations", "pending", "authenticated", me),
        ("jobs", "pending", "authenticated", me),
    ]


async def test_forged_tags_do_not_reach_the_transition_log(
    world: tuple[str, dict[str, Any]],
) -> None:
    # Any session may set custom settings: a user sets the worker's tags, then makes a
    # change that is theirs to make. The log records who they are, not what they claim.
    url, params = world
    me = params["me"]
    async with signed_in(url, "authenticated", me) as conn:
        for name, value in (
            ("reason", "approved by ops"),
            ("workflow_id", "job-x"),
            ("run_id", "run-x"),
        ):
            await conn.execute("SELECT set_config(%s, %s, true)", (f"orchestrator.{name}", value))
        row = await (
            await conn.execute(
                "INSERT INTO generations (user_id, prompt_text) VALUES (%s, 'x') RETURNING id",
                (me,),
            )
        ).fetchone()
    assert row is not None
    async with await AsyncConnection.connect(url) as conn:
        tags = await (
            await conn.execute(
                "SELECT reason, workflow_id, run_id FROM status_transitions WHERE entity_id = %s",
                (row["id"],),
            )
        ).fetchall()
        actor = await (
            await conn.execute(
                "SELECT actor_role, actor_user_id FROM status_transitions WHERE entity_id = %s",
                (row["id"],),
            )
        ).fetchall()
    assert tags == [(None, None, None)]
    assert actor == [("authenticated", me)]


async def test_the_back_end_still_writes_everything_with_its_tags(
    world: tuple[str, dict[str, Any]],
) -> None:
    # The worker connects as the tables' owner, or as a BYPASSRLS role (service_role on
    # Supabase, which gives it every table): both write the columns users may not, and
    # their tags are recorded.
    url, params = world
    generation = params["generation_id"]
    async with await AsyncConnection.connect(url) as conn:
        supabase = await (
            await conn.execute(
                "SELECT has_table_privilege('service_role', 'public.generations', 'UPDATE')"
            )
        ).fetchone()
    as_service_role = bool(supabase and supabase[0])
    async with await AsyncConnection.connect(url) as conn:
        if as_service_role:
            await conn.execute("SET LOCAL ROLE service_role")
        await conn.execute("SELECT set_config('orchestrator.reason', 'slot taken', true)")
        await conn.execute("SELECT set_config('orchestrator.workflow_id', 'generation-x', true)")
        await conn.execute(
            "UPDATE generations SET status = 'submitting', submit_started_at = now() WHERE id = %s",
            (generation,),
        )
        await conn.execute(
            "UPDATE profiles SET subscription_tier = 'pro' WHERE id = %s", (params["me"],)
        )
        await conn.execute(
            "UPDATE jobs SET status = 'running', steel_session_id = 's' WHERE id = %s",
            (params["job_id"],),
        )
        await conn.commit()
        logged = await (
            await conn.execute(
                "SELECT reason, workflow_id, actor_role, actor_user_id FROM status_transitions "
                "WHERE entity_id = %s AND to_status = 'submitting'",
                (generation,),
            )
        ).fetchall()
    role = "service_role" if as_service_role else "postgres"
    assert logged == [("slot taken", "generation-x", role, None)]


async def test_the_worker_cannot_hand_one_users_browser_profile_to_another(
    world: tuple[str, dict[str, Any]],
) -> None:
    # The check is the database's: it holds for every writer, so what the worker reads
    # from workspaces to open a session has passed it.
    url, params = world
    before = await digest(url)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        for query in (
            "UPDATE workspaces SET browser_settings = %(settings)s WHERE id = %(workspace_id)s",
            "INSERT INTO workspaces (user_id, platform_name, browser_settings) "
            "VALUES (%(me)s, 'Notion', %(settings)s)",
        ):
            settings = Jsonb({"profile_id": params["other_profile"]})
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="another user"):
                await conn.execute(query, params | {"settings": settings})
        for bad in ({"profile_id": 42}, {"profile_id": ""}, ["profile_id"]):
            with pytest.raises(psycopg.errors.CheckViolation):
                await conn.execute(
                    "UPDATE workspaces SET browser_settings = %s WHERE id = %s",
                    (Jsonb(bad), params["workspace_id"]),
                )
    assert await digest(url) == before


def test_hostile_table_names_are_unique() -> None:
    assert len({h.name for h in HOSTILE}) == len(HOSTILE)
