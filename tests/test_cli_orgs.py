"""The CLI for teams: an organization, its members and routes, a job put in it with
--org, and an approval delegated and shown with its approvers and votes."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.db.factories import insert_user
from tests.harness import running_stack
from tests.test_cli import orchestrator
from tests.workflows.approval_helpers import approval_email, approval_row
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request
from tests.workflows.team_helpers import PAYMENT_STEP, tag


async def test_orgs_members_routes_and_a_delegated_approval_from_the_cli(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    t = tag()
    ann, max_, mo = f"ann-{t}@agency.test", f"max-{t}@agency.test", f"mo-{t}@agency.test"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        async with stack.pool.connection() as conn:
            for email in (ann, max_, mo):
                await insert_user(conn, email)
        created = await orchestrator(stack, "--json", "orgs", "create", "Agency")
        assert created.returncode == 0, created.stderr
        org = json.loads(created.stdout)["id"]
        for email, role in ((ann, "admin"), (max_, "manager"), (mo, "manager")):
            added = await orchestrator(stack, "orgs", "member", org, email, "--role", role)
            assert added.returncode == 0, added.stderr
        # The creator is the organization's admin; ann an admin too. Demoting both: the
        # second is refused in one line with what to do.
        creator = await stack.fetchrow(
            "SELECT u.email FROM team_members m JOIN auth.users u ON u.id = m.user_id "
            "WHERE m.org_id = %s AND m.role = 'admin' AND u.email <> %s",
            org,
            ann,
        )
        if creator is not None:
            stepped = await orchestrator(
                stack, "orgs", "member", org, creator["email"], "--role", "member"
            )
            assert stepped.returncode == 0, stepped.stderr
        last = await orchestrator(stack, "orgs", "member", org, ann, "--role", "manager")
        assert last.returncode != 0
        assert (
            last.stderr.strip()
            .splitlines()[-1]
            .endswith(
                "an organization keeps at least one admin: make another member an admin first"
            )
        ), last.stderr
        missing = await orchestrator(stack, "orgs", "member", org, f"nobody-{t}@agency.test")
        assert missing.returncode != 0 and "no user has the address" in missing.stderr
        for bad in (["--roles", "owner"], ["--roles", "manager", "--quorum", "0"]):
            refused = await orchestrator(stack, "orgs", "route", org, "payment", *bad)
            assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
        route = await orchestrator(
            stack, "orgs", "route", org, "payment", "--roles", "manager", "--quorum", "1"
        )
        assert route.returncode == 0, route.stderr
        shown = await orchestrator(stack, "orgs", "show", org)
        assert "payment: manager, 1 approval(s)" in shown.stdout and max_ in shown.stdout

        request = await job_request(stack, [SAFE_STEPS[0], PAYMENT_STEP], email=f"o-{t}@x.test")
        async with stack.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO team_members (org_id, user_id) VALUES (%s, %s)",
                (org, request.user_id),
            )
        job_file = tmp_path / "job.json"
        job_file.write_text(request.model_dump_json())
        started = await orchestrator(stack, "jobs", "start", "--file", str(job_file), "--org", org)
        assert started.returncode == 0, started.stderr
        row = await approval_row(stack, request.job_id)
        assert str(row["org_id"]) == org
        await approval_email(stack, max_)
        listed = await orchestrator(stack, "--json", "jobs", "list", "--org", org)
        assert [j["id"] for j in json.loads(listed.stdout)] == [str(request.job_id)]

        refused = await orchestrator(
            stack, "approvals", "delegate", str(row["id"]), "--by", max_, "--to", ann
        )
        assert refused.returncode != 0 and "this needs a manager" in refused.stderr
        # mo, a manager, was asked already: max hands his seat to a manager not yet asked.
        kim = f"kim-{t}@agency.test"
        async with stack.pool.connection() as conn:
            await insert_user(conn, kim)
        await orchestrator(stack, "orgs", "member", org, kim, "--role", "manager")
        handed = await orchestrator(
            stack, "approvals", "delegate", str(row["id"]), "--by", max_, "--to", kim
        )
        assert handed.returncode == 0, handed.stderr
        await approval_email(stack, kim)
        shown = await orchestrator(stack, "approvals", "show", str(row["id"]))
        assert f"{kim} (delegation)" in shown.stdout and "handed on" in shown.stdout
        assert "votes: 0 of 1 approvals" in shown.stdout
