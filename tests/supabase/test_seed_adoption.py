"""`orchestrator migrate` on a Supabase project that already holds a seed's tables and rows.

Each test lays down a seed's schema as the app has it (tests/supabase/seeds.py), inserts
rows as the app would, migrates, and checks that every row and value is still there,
that what the worker needs was added, and that the worker then runs over those rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from temporalio.testing import WorkflowEnvironment

from activities.higgsfield import key_context
from db.migrate import load_migrations, plan, run_migrations
from tests.encryption import TEST_KEYRING
from tests.harness import running_stack
from tests.supabase.seeds import (
    seed_000_sql,
    seed_columns,
    seed_file,
    seed_sql,
    sql_blocks,
)
from tests.waiting import eventually
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, start_job
from workers.starters import start_generation
from workflows.models.agent_job import AgentJobInput
from workflows.models.generation import GenerationInput

SEED_000_TABLES = ["profiles", "workspaces", "jobs", "approvals", "memories"]
SEED_003_TABLES = ["users", "user_api_keys", "ai_models", "assets", "prompts", "generations"]
SEED_002_TABLES = [
    "platform_connections",
    "performance_metrics",
    "metric_sync_logs",
    "notification_queue",
]


async def _run(url: str, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        for s in statements:
            if isinstance(s, tuple):
                await conn.execute(s[0].encode(), s[1])  # type: ignore[call-overload]
            else:
                await conn.execute(s.encode())


async def _rows(url: str, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    async with await AsyncConnection.connect(url) as conn:
        out = {}
        for table in tables:
            cur = await conn.execute(f"SELECT to_jsonb(t) FROM public.{table} t ORDER BY t.id")
            out[table] = [r[0] for r in await cur.fetchall()]
    return out


def _kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> None:
    """Every row is there with every value it had (new columns may sit beside them)."""
    for table, rows in before.items():
        assert len(after[table]) == len(rows), table
        for old, new in zip(rows, after[table], strict=True):
            assert {k: new[k] for k in old} == old, table


async def _rls_off(url: str) -> list[str]:
    async with await AsyncConnection.connect(url) as conn:
        rows = await (
            await conn.execute(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity"
            )
        ).fetchall()
    return [r[0] for r in rows]


async def _auth_user(admin_url: str, email: str, name: str = "") -> uuid.UUID:
    """A signed-up user: Supabase Auth (not the project's role) writes auth.users."""
    user_id = uuid.uuid4()
    await _run(
        admin_url,
        (
            "INSERT INTO auth.users (id, email, raw_user_meta_data) VALUES (%s, %s, %s)",
            (user_id, email, Jsonb({"name": name})),
        ),
    )
    return user_id


# --- the DDL is the seeds' ----------------------------------------------------------------


def test_seed_000_copy_is_the_seed_files_sql() -> None:
    path = seed_file("000")
    if path is None:
        pytest.skip("shared/seeds is not beside this checkout; the committed copy is used")
    from tests.supabase.seeds import HERE

    assert (HERE / "seed_000.sql").read_text() == sql_blocks(path.read_text())


@pytest.mark.parametrize(
    ("seed", "tables", "ddl"),
    [("003", SEED_003_TABLES, "seed_003"), ("002", SEED_002_TABLES, "seed_002")],
)
async def test_seed_ddl_has_the_seed_files_columns(
    seed: str, tables: list[str], ddl: str, supabase_url: str
) -> None:
    path = seed_file(seed)
    if path is None:
        pytest.skip("shared/seeds is not beside this checkout")
    await _run(supabase_url, seed_sql(ddl))
    async with await AsyncConnection.connect(supabase_url) as conn:
        for table in tables:
            cur = await conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
                "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum",
                (f"public.{table}",),
            )
            laid = [(n, t, d) for n, t, d in await cur.fetchall()]
            expected = seed_columns(path, table)
            assert [(n, t) for n, t, _ in laid] == [(n, t) for n, t, _ in expected], table
            if seed == "002":
                continue  # seed 002's tables give no defaults
            for (name, _, ours), (_, _, theirs) in zip(laid, expected, strict=True):
                if theirs is None:
                    assert ours is None or ours.startswith("NULL"), (table, name, ours)
                elif theirs.startswith("`{"):
                    assert ours is not None and json.loads(ours.split("'")[1]) == json.loads(
                        theirs.strip("`")
                    ), (table, name)
                else:
                    core = theirs.strip("`'").split("(")[0].replace('"', "")
                    flat = (ours or "").replace('"', "").replace(" ", "")
                    assert core.replace(" ", "") in flat, (table, name, ours, theirs)


# --- seed 000 -----------------------------------------------------------------------------


async def _seed_000(url: str, admin_url: str) -> dict[str, uuid.UUID]:
    await _run(url, seed_000_sql())
    user = await _auth_user(admin_url, "ana@agency.example")
    job, old_job = uuid.uuid4(), uuid.uuid4()
    await _run(
        url,
        (
            "INSERT INTO profiles (id, full_name, email_address) VALUES (%s, 'Ana', %s)",
            (user, "ana@agency.example"),
        ),
        (
            "INSERT INTO workspaces (user_id, platform_name, agent_email) "
            "VALUES (%s, 'Notion', 'agent@agency.example')",
            (user,),
        ),
        (
            "INSERT INTO jobs (id, user_id, temporal_workflow_id, status, steel_session_id) "
            "VALUES (%s, %s, 'old-run', 'completed', 'sess-1')",
            (job, user),
        ),
        # A status the worker's state machine does not have: kept, reported.
        ("INSERT INTO jobs (id, user_id, status) VALUES (%s, %s, 'archived')", (old_job, user)),
        (
            "INSERT INTO approvals (job_id, action_type, description, status, decided_at) "
            "VALUES (%s, 'delete', 'Delete the Old Specs folder', 'approved', now())",
            (job,),
        ),
        (
            "INSERT INTO memories (user_id, content, metadata, embedding) "
            "VALUES (%s, 'prefers short emails', '{}', %s::extensions.vector)",
            (user, "[" + ",".join(["0.5"] * 1536) + "]"),
        ),
    )
    return {"user": user, "job": job, "old_job": old_job}


async def test_seed_000_tables_are_adopted_with_every_row(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    await _seed_000(supabase_url, admin_url_of(supabase_url))
    before = await _rows(supabase_url, SEED_000_TABLES)

    preview = await plan(supabase_url)
    assert await _rows(supabase_url, SEED_000_TABLES) == before  # the plan changed nothing
    changes = "\n".join(preview.changes)
    assert "+ column public.jobs.title: text" in changes
    assert "+ table public.job_steps" in changes
    assert "~ table public.jobs: grants" in changes or "~ table public.jobs:" in changes
    assert not [line for line in preview.changes if line.startswith("- ")]

    report = await run_migrations(supabase_url)
    assert report.applied == [m.name for m in load_migrations()]
    assert report.notes == preview.notes
    assert any("'archived' (1)" in n and "public.jobs.status" in n for n in report.notes), (
        report.notes
    )
    _kept(before, await _rows(supabase_url, SEED_000_TABLES))
    assert await _rls_off(supabase_url) == []
    assert (await run_migrations(supabase_url)).applied == []


async def test_a_seed_000_users_job_gets_an_approval_gate(
    supabase_url: str,
    admin_url_of: Callable[[str], str],
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    ids = await _seed_000(supabase_url, admin_url_of(supabase_url))
    await run_migrations(supabase_url)
    async with running_stack(supabase_url, temporal_env.client, task_queue) as stack:
        workspace = await stack.fetchrow(
            "SELECT id FROM workspaces WHERE user_id = %s", ids["user"]
        )
        assert workspace is not None
        request = AgentJobInput(
            job_id=uuid.uuid4(),
            user_id=ids["user"],
            workspace_id=workspace["id"],
            title="Tidy the specs",
            instruction="Remove the old specs",
            steps=[*SAFE_STEPS[:1], DELETE_STEP],
        )
        await start_job(stack, request)

        async def gate() -> dict[str, Any] | None:
            return await stack.fetchrow(
                "SELECT a.status, a.approver_email, j.status AS job_status FROM approvals a "
                "JOIN jobs j ON j.id = a.job_id WHERE a.job_id = %s",
                request.job_id,
            )

        row = await eventually(gate, what="the approval gate")
        assert row == {
            "status": "pending",
            "approver_email": "ana@agency.example",
            "job_status": "waiting_approval",
        }
        old = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", ids["old_job"])
        assert old == {"status": "archived"}


# --- seed 003 -----------------------------------------------------------------------------


async def _seed_003(url: str, admin_url: str) -> dict[str, uuid.UUID]:
    await _run(url, seed_sql("seed_003"))
    await _run(admin_url, seed_sql("seed_003_storage"))
    user = await _auth_user(admin_url, "lea@studio.example", "Léa")
    box = TEST_KEYRING.credential_box()  # the stack's key (tests/harness.py)
    generation = uuid.uuid4()
    await _run(
        url,
        ("UPDATE users SET subscription_tier = 'pro' WHERE id = %s", (user,)),
        (
            "INSERT INTO user_api_keys (user_id, service, encrypted_api_key) "
            "VALUES (%s, 'higgsfield', %s)",
            (user, box.encrypt("hf_key_id:hf_secret", key_context(user, "higgsfield"))),
        ),
        (
            "INSERT INTO assets (user_id, filename, file_path, file_type, mime_type, file_size) "
            "VALUES (%s, 'ref.jpg', %s, 'image', 'image/jpeg', 1234)",
            (user, f"{user}/image/ref.jpg"),
        ),
        (
            "INSERT INTO generations (id, user_id, prompt_text, status, higgsfield_job_id, "
            "result_urls) VALUES (%s, %s, 'a studio portrait', 'completed', 'hf-1', "
            "'{https://cdn.example/1.png}')",
            (generation, user),
        ),
    )
    return {"user": user, "generation": generation}


async def test_seed_003_tables_are_adopted_and_users_get_profiles(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    ids = await _seed_003(supabase_url, admin_url_of(supabase_url))
    before = await _rows(supabase_url, SEED_003_TABLES)
    report = await run_migrations(supabase_url)
    assert report.notes == []
    _kept(before, await _rows(supabase_url, SEED_003_TABLES))
    assert await _rls_off(supabase_url) == []
    async with await AsyncConnection.connect(supabase_url) as conn:
        profile = await (
            await conn.execute(
                "SELECT full_name, email_address, subscription_tier FROM profiles WHERE id = %s",
                (ids["user"],),
            )
        ).fetchone()
    assert profile == ("Léa", "lea@studio.example", "pro")
    # A user who signs up later gets a profile too (seed 003's trigger, then ours).
    later = await _auth_user(admin_url_of(supabase_url), "noa@studio.example", "Noa")
    async with await AsyncConnection.connect(supabase_url) as conn:
        row = await (
            await conn.execute("SELECT full_name FROM profiles WHERE id = %s", (later,))
        ).fetchone()
    assert row == ("Noa",)


async def test_a_seed_003_users_generation_completes_with_their_stored_key(
    supabase_url: str,
    admin_url_of: Callable[[str], str],
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Any,
) -> None:
    ids = await _seed_003(supabase_url, admin_url_of(supabase_url))
    await run_migrations(supabase_url)
    async with running_stack(
        supabase_url,
        temporal_env.client,
        task_queue,
        asset_storage_dir=str(tmp_path),
    ) as stack:
        request = GenerationInput(
            generation_id=uuid.uuid4(), user_id=ids["user"], prompt_text="a beach at sunset"
        )
        handle = await start_generation(stack.client, stack.settings, request)
        result = await handle.result()
        assert result.status == "completed" and result.asset_ids
        assets = await stack.fetchall(
            "SELECT file_path FROM assets WHERE id = ANY(%s::uuid[])", result.asset_ids
        )
        assert all(a["file_path"].startswith(f"{ids['user']}/") for a in assets)
        old = await stack.fetchrow(
            "SELECT status, higgsfield_job_id FROM generations WHERE id = %s", ids["generation"]
        )
        assert old == {"status": "completed", "higgsfield_job_id": "hf-1"}


# --- seed 002 -----------------------------------------------------------------------------


async def test_seed_002_tables_are_adopted_and_manual_entries_stay_possible(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    await _run(supabase_url, seed_sql("seed_002"))
    user = await _auth_user(admin_url_of(supabase_url), "max@agency.example")
    connection = uuid.uuid4()
    await _run(
        supabase_url,
        (
            "INSERT INTO platform_connections (id, platform, credentials, account_id, created_by)"
            " VALUES (%s, 'facebook', '{\"token\": \"enc\"}', 'act_1', %s)",
            (connection, user),
        ),
        "INSERT INTO performance_metrics (platform, metric_type, value, date, source) VALUES "
        "('facebook', 'clicks', 10, '2025-01-02', 'manual_entry'), "
        "('google', 'clicks', 12, '2025-01-02', 'manual_entry')",
        (
            "INSERT INTO metric_sync_logs (platform_connection_id, status, start_time) "
            "VALUES (%s, 'success', now())",
            (connection,),
        ),
        # The app's own queued notification, from its trigger: kept as it is.
        "INSERT INTO notification_queue (entity_type, event_data, attempts, last_error) "
        "VALUES ('request', '{\"new_status\": \"approved\"}', 2, 'slack 500')",
    )
    before = await _rows(supabase_url, SEED_002_TABLES)
    report = await run_migrations(supabase_url)
    _kept(before, await _rows(supabase_url, SEED_002_TABLES))
    assert await _rls_off(supabase_url) == []
    # The app's sync log left its counts and details NULL: they stay so, and nullable.
    assert report.notes == [
        f"public.metric_sync_logs.{c}: 1 row(s) hold NULL, kept as they are; "
        "the column stays nullable"
        for c in ("metrics_updated", "metrics_created", "details")
    ]
    # The app's next manual entry for the same metric and date is still accepted.
    await _run(
        supabase_url,
        "INSERT INTO performance_metrics (platform, metric_type, value, date, source) "
        "VALUES ('tiktok', 'clicks', 3, '2025-01-02', 'manual_entry')",
    )


async def test_duplicates_in_a_key_the_worker_needs_stop_with_one_line(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    ids = await _seed_003(supabase_url, admin_url_of(supabase_url))
    await _run(
        supabase_url,
        (
            "INSERT INTO assets (user_id, filename, file_path, file_type, mime_type, file_size) "
            "VALUES (%s, 'ref.jpg', %s, 'image', 'image/jpeg', 1234)",
            (ids["user"], f"{ids['user']}/image/ref.jpg"),
        ),
    )
    before = await _rows(supabase_url, SEED_003_TABLES)
    with pytest.raises(Exception, match=r"public.assets: 1 value\(s\) of \(file_path\)"):
        await run_migrations(supabase_url)
    assert await _rows(supabase_url, SEED_003_TABLES) == before


# --- what an operator types -----------------------------------------------------------------


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={"PATH": os.environ["PATH"], "ORCHESTRATOR_HOME": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_plan_prints_the_changes_and_applies_nothing(
    supabase_url: str, admin_url_of: Callable[[str], str]
) -> None:
    await _seed_000(supabase_url, admin_url_of(supabase_url))
    before = await _rows(supabase_url, SEED_000_TABLES)
    shown = await asyncio.to_thread(_cli, "migrate", "--plan", DATABASE_URL=supabase_url)
    assert shown.returncode == 0, shown.stderr
    assert "would apply 0001_supabase_standins.sql" in shown.stdout
    assert "+ column public.approvals.approver_email: text" in shown.stdout
    assert "note: public.jobs.status: rows with a status outside the state machine" in (
        shown.stdout
    )
    async with await AsyncConnection.connect(supabase_url) as conn:
        ledger = await (
            await conn.execute("SELECT to_regclass('orchestrator.schema_migrations')")
        ).fetchone()
    assert ledger == (None,)
    assert await _rows(supabase_url, SEED_000_TABLES) == before
    # Through the transaction pooler's URL, migrate says what to set instead.
    refused = await asyncio.to_thread(
        _cli,
        "migrate",
        DATABASE_URL="postgresql://postgres.ref:pw@pooler.example:6543/postgres",
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "DATABASE_MIGRATION_URL" in refused.stderr
    # DATABASE_MIGRATION_URL is the one migrations use.
    applied = await asyncio.to_thread(
        _cli,
        "migrate",
        DATABASE_URL="postgresql://postgres.ref:pw@pooler.example:6543/postgres",
        DATABASE_MIGRATION_URL=supabase_url,
    )
    assert applied.returncode == 0, applied.stderr
    assert "applied 0018_blobs_in_object_storage.sql" in applied.stdout
