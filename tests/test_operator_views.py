"""The saved-view queries of docs/operations.md, run through the visibility API of the dev
server against workflows in those states."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.generations.helpers import start, user_with_key
from tests.harness import running_stack
from tests.metrics import add_connection, backfill
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, job_request, start_job

OPERATIONS = Path(__file__).parent.parent / "docs" / "operations.md"


def views() -> dict[str, str]:
    """View name → query, from the table of the operator's day."""
    section = OPERATIONS.read_text().split("## The operator's day", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| ([^|]+?) \| `([^`]+)` \|$", section, re.M))


def _at(query: str, moment: datetime) -> str:
    """The query with its example timestamp replaced by ``moment``."""
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return re.sub(r"'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'", f"'{stamp}'", query)


async def _ids(client: Client, query: str) -> set[str]:
    return {w.id async for w in client.list_workflows(query)}


async def test_operator_views_find_what_they_promise(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    queries = views()
    assert len(queries) == 4
    client = temporal_env.client
    async with running_stack(db_url, client, task_queue) as stack:
        waiting = await job_request(stack, [SAFE_STEPS[0], DELETE_STEP])
        job = await start_job(stack, waiting)
        await approval_row(stack, waiting.job_id)
        stack.emulators.higgsfield.set_outcome("failed")
        user_id = await user_with_key(stack)
        _, generation = await start(stack, user_id, "this one fails")
        assert (await generation.result()).status == "failed"
        stack.emulators.meta.configure_account("555", campaigns=150)  # several Meta pages per slice
        stack.emulators.meta.fail_page("555", 1, times=100)
        connection = await add_connection(stack, account_id="555")
        sync = await backfill(stack, connection)
        assert (await sync.result()).status == "partial"

        now = datetime.now(UTC)
        older = _at(queries["waiting approvals older than a day"], now + timedelta(minutes=1))
        await eventually(lambda: _has(client, older, job.id), what="waiting job in the view")
        newer = _at(queries["waiting approvals older than a day"], now - timedelta(days=1))
        assert job.id not in await _ids(client, newer)  # waiting less than a day

        today = now.replace(hour=0, minute=0, second=0)
        failed = _at(queries["failed generations today"], today)
        await eventually(lambda: _has(client, failed, generation.id), what="failed generation")

        partial = queries["syncs that ended partial"]
        await eventually(lambda: _has(client, partial, sync.id), what="partial sync")

        mine = queries["jobs of one user"].replace("<profiles.id>", str(waiting.user_id))
        await eventually(lambda: _has(client, mine, job.id), what="the user's job")
        await job.cancel()


async def _has(client: Client, query: str, workflow_id: str) -> bool:
    return workflow_id in await _ids(client, query)
