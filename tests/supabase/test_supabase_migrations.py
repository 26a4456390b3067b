"""`orchestrator migrate` on a database set up like a current Supabase project."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from temporalio.testing import WorkflowEnvironment

from db.catalog import snapshot
from db.migrate import ADOPT_HELPERS, MigrationError, load_migrations, migrate, plan
from db.pool import is_transaction_pooler, open_pool
from tests.db.factories import insert_workspace
from tests.harness import running_stack
from tests.supabase.conftest import database_url
from tests.supabase.pooler import TransactionPooler
from tests.supabase.test_seed_adoption import _auth_user
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, start_job
from workflows.models.agent_job import AgentJobInput
from workflows.models.approval import ApprovalDecisionInput

SUPABASE_SCHEMAS = ("auth.", "storage.", "extensions.")


async def _snapshot(url: str) -> dict[str, str]:
    async with await AsyncConnection.connect(url) as conn:
        return await snapshot(conn)


async def _rls_off(url: str) -> list[str]:
    async with await AsyncConnection.connect(url) as conn:
        rows = await (
            await conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'orchestrator') AND c.relkind = 'r' "
                "AND NOT c.relrowsecurity"
            )
        ).fetchall()
    return [r[0] for r in rows]


async def test_migrations_apply_without_touching_what_supabase_owns(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    before = await _snapshot(admin_url_of(supabase_url))
    applied = await migrate(supabase_url)
    assert applied == [m.name for m in load_migrations()]
    after = await _snapshot(admin_url_of(supabase_url))
    supabase_owned = {k for k in before if any(s in k for s in SUPABASE_SCHEMAS)}
    assert {k: after.get(k) for k in supabase_owned} == {k: before[k] for k in supabase_owned}
    assert not [k for k in after.keys() - before.keys() if any(s in k for s in SUPABASE_SCHEMAS)]
    assert after["extension vector"] == "in schema extensions"
    assert after["column public.memories.embedding"] == "extensions.vector(1536)"
    async with await AsyncConnection.connect(supabase_url) as conn:
        row = await (
            await conn.execute(
                "SELECT atttypid::regtype::text, t.typnamespace::regnamespace::text "
                "FROM pg_attribute JOIN pg_type t ON t.oid = atttypid "
                "WHERE attrelid = 'public.memories'::regclass AND attname = 'embedding'"
            )
        ).fetchone()
    assert row == ("vector", "extensions")  # "vector": extensions is on its search_path
    assert await _rls_off(supabase_url) == []
    assert await migrate(supabase_url) == []
    assert await _snapshot(admin_url_of(supabase_url)) == after


async def test_the_old_standins_fail_there(supabase_url: str) -> None:
    """The fixture is strict enough: the text of 0001 before issue 25 is refused."""
    from pathlib import Path

    old = Path(__file__).parent / "main_migrations" / "0001_supabase_standins.sql"
    async with await AsyncConnection.connect(supabase_url, autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="schema auth"):
            await conn.execute(old.read_text().encode())


async def test_the_type_resolves_without_extensions_on_the_search_path(
    supabase_url: str,
) -> None:
    url = supabase_url + " options='-c search_path=public'"
    assert await migrate(url) == [m.name for m in load_migrations()]


async def test_migrations_apply_on_plain_postgres_as_a_superuser(empty_db_url: str) -> None:
    await migrate(empty_db_url)
    facts = await _snapshot(empty_db_url)
    assert facts["extension vector"] == "in schema public"
    assert "table auth.users" in facts
    assert "function auth.uid()" in facts
    assert await _rls_off(empty_db_url) == []


@pytest.mark.parametrize("kind", ["supabase", "plain"])
async def test_adopting_migrations_change_nothing_when_applied_again(
    kind: str, supabase_url: str, empty_db_url: str, admin_url_of: Callable[[str], str]
) -> None:
    """0001-0005 and 0007 run over their own result (an adopted database) change nothing.

    The database is migrated up to 0010, the last of the migrations they were written
    beside: later ones (0013's column grants) narrow what these grant, by design.
    """
    url = supabase_url if kind == "supabase" else empty_db_url
    look = admin_url_of(url)
    with tempfile.TemporaryDirectory() as early:
        for m in load_migrations():
            if m.version <= "0010":
                (Path(early) / m.name).write_text(m.sql)
        await migrate(url, Path(early))
    before = await _snapshot(look)

    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(ADOPT_HELPERS.read_text().encode())
        for m in load_migrations():
            if m.version in ("0001", "0003", "0004", "0005", "0007"):
                await conn.execute(m.sql.encode())
    assert await _snapshot(look) == before


async def test_a_transaction_pooler_url_is_refused_for_migrations() -> None:
    url = "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    with pytest.raises(MigrationError, match="DATABASE_MIGRATION_URL"):
        await migrate(url)


async def test_plan_changes_nothing(supabase_url: str, admin_url_of: Callable[[str], str]) -> None:
    before = await _snapshot(admin_url_of(supabase_url))
    report = await plan(supabase_url)
    assert report.applied == [m.name for m in load_migrations()]
    assert "+ table public.jobs: row level security, grants " in "\n".join(
        line[: len("+ table public.jobs: row level security, grants ")] for line in report.changes
    )
    assert await _snapshot(admin_url_of(supabase_url)) == before


def test_database_url_helper_keeps_the_socket() -> None:
    url = database_url("host=/tmp/x port=5432 user=postgres dbname=postgres", "other", "me")
    assert "host=/tmp/x" in url and "dbname=other" in url and "user=me" in url


# --- Supavisor's transaction mode ---------------------------------------------------------


@pytest.fixture
async def pooled_url(supabase_url: str, tmp_path: Any) -> AsyncIterator[str]:
    """``supabase_url`` through a transaction-mode pooler (port 6543), migrated."""
    await migrate(supabase_url)
    params = conninfo_to_dict(supabase_url)
    server_socket = f"{params['host']}/.s.PGSQL.{params.get('port', 5432)}"
    pooler = TransactionPooler(
        Path(tempfile.mkdtemp(prefix="pooler-")),
        server_socket,
        str(params["user"]),
        str(params["dbname"]),
    )
    await pooler.start()
    try:
        yield make_conninfo(
            host=str(pooler.path.parent),
            port="6543",
            user=params["user"],
            dbname=params["dbname"],
        )
    finally:
        await pooler.stop()


async def test_the_test_pooler_breaks_prepared_statements(pooled_url: str) -> None:
    """What the setting prevents: psycopg prepares a statement run five times, and the
    sixth run lands on another server session that has never heard of it."""
    pool = await open_pool(pooled_url, min_size=1, max_size=1, transaction_pooler=False)
    try:
        with pytest.raises(errors.InvalidSqlStatementName):
            for _ in range(10):
                async with pool.connection() as conn:
                    await conn.execute(
                        "SELECT count(*) FROM public.jobs WHERE id = %s", (uuid.uuid4(),)
                    )
    finally:
        await pool.close()


async def test_worker_and_ingress_run_through_a_transaction_pooler(
    pooled_url: str,
    supabase_url: str,
    admin_url_of: Callable[[str], str],
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    assert is_transaction_pooler(pooled_url)
    async with running_stack(pooled_url, temporal_env.client, task_queue) as stack:
        for n in range(3):
            email = f"pooled-{n}-{uuid.uuid4().hex[:6]}@example.com"
            user = await _auth_user(admin_url_of(supabase_url), email)
            async with stack.pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO profiles (id, email_address) VALUES (%s, %s)", (user, email)
                )
                workspace = await insert_workspace(conn, user)
            request = AgentJobInput(
                job_id=uuid.uuid4(),
                user_id=user,
                workspace_id=workspace,
                title="Tidy",
                instruction="Remove the old specs",
                steps=[*SAFE_STEPS, DELETE_STEP],
            )
            handle = await start_job(stack, request)
            row = await approval_row(stack, request.job_id)
            assert row["status"] == "pending"
            await handle.execute_update(
                "decide_approval",
                ApprovalDecisionInput(
                    approval_id=row["id"],
                    decision="approve",
                    decided_by="ops@agency.example",
                    channel="ui",
                ),
            )
            assert (await handle.result()).status == "completed"
