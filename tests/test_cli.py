"""The CLI against a running system: jobs and approvals, JSON output, one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.encryption import TEST_MASTER_KEY
from tests.harness import Stack, running_stack
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request


async def orchestrator(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, pointed at the test's database and Temporal."""
    target = stack.client.service_client.config.target_host
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": stack.settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "TEMPORAL_ADDRESS": target,
        "TEMPORAL_TASK_QUEUE": stack.settings.temporal_task_queue,
        "ENCRYPTION_MASTER_KEY": TEST_MASTER_KEY,  # the worker's key: the CLI's client reads
        "ORCHESTRATOR_HOME": "/nonexistent-orchestrator-home",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_jobs_and_approvals_from_the_cli(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, [SAFE_STEPS[0], DELETE_STEP], email="ron@example.com")
        job_file = tmp_path / "job.json"
        job_file.write_text(request.model_dump_json())
        started = await orchestrator(stack, "--json", "jobs", "start", "--file", str(job_file))
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["workflow_id"] == f"job-{request.job_id}"

        row = await approval_row(stack, request.job_id)
        listed = await orchestrator(stack, "--json", "approvals", "list", "--status", "pending")
        assert [a["id"] for a in json.loads(listed.stdout)] == [str(row["id"])]
        decided = await orchestrator(
            stack, "approvals", "approve", str(row["id"]), "--by", "ops@agency", "--note", "fine"
        )
        assert decided.returncode == 0, decided.stderr
        handle = stack.client.get_workflow_handle(f"job-{request.job_id}")
        assert (await handle.result())["status"] == "completed"
        again = await orchestrator(stack, "approvals", "reject", str(row["id"]), "--by", "x")
        assert again.returncode == 1
        assert again.stderr.strip() == (
            f"orchestrator: approval {row['id']} was already approved; nothing changed"
        )
        status = await orchestrator(stack, "--json", "jobs", "status", str(request.job_id))
        data = json.loads(status.stdout)
        assert data["job"]["status"] == "completed" and len(data["steps"]) == 2
        row = await approval_row(stack, request.job_id)
        assert (row["decided_by"], row["decision_channel"], row["decision_note"]) == (
            "ops@agency",
            "cli",
            "fine",
        )


async def test_cli_errors_are_one_line(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"title": "x", "steps": [{"action": {"action": "fly"}}]}))
        result = await orchestrator(stack, "jobs", "start", "--file", str(bad))
        assert result.returncode == 1
        assert result.stderr.startswith("orchestrator: invalid job in")
        assert len(result.stderr.strip().splitlines()) == 1
        zero = "00000000-0000-0000-0000-000000000000"
        missing = await orchestrator(stack, "approvals", "show", zero)
        assert missing.returncode == 1 and "no approvals row" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1
        nothing = await orchestrator(stack, "jobs", "start", "--file", str(tmp_path / "none.json"))
        assert nothing.stderr.strip().startswith("orchestrator: job file not found")
