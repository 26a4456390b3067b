"""An app's users and the rows their app inserts, signed in as PostgREST signs them in."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.higgsfield import key_context
from db.generations import Q
from tests.db.factories import insert_user, insert_workspace
from tests.harness import Stack
from tests.security.rls_helpers import signed_in
from tests.waiting import eventually
from workers.keys import credential_box

HF_KEY = "hf_key_id:hf_key_secret_value"
SAFE_PLAN = {
    "steps": [
        {"action": {"action": "navigate", "url": "https://notion.so/specs"}, "description": "Open"},
        {"action": {"action": "type_text", "text": "Q3 spec"}, "description": "Rename the draft"},
    ]
}
GATED_PLAN = {
    "steps": [
        *SAFE_PLAN["steps"],
        {
            "action": {"action": "click_mouse", "coordinates": [5, 5]},
            "description": "Delete the 'Old Specs' folder",
            "risk": "delete",
        },
    ]
}


@dataclass
class AppUser:
    """A signed-up user with a profile, a Notion workspace and (by default) a stored key."""

    user_id: uuid.UUID
    workspace_id: uuid.UUID
    email: str


async def app_user(stack: Stack, *, with_key: bool = True) -> AppUser:
    """A new user of the app, as the worker's tables hold them."""
    async with stack.pool.connection() as conn:
        email = f"app-{uuid.uuid4().hex[:8]}@example.com"
        user_id = await insert_user(conn, email)
        workspace_id = await insert_workspace(conn, user_id)
        if with_key:
            box = credential_box(stack.settings)
            await conn.execute(
                Q["upsert_user_api_key"],
                {
                    "user_id": user_id,
                    "service": "higgsfield",
                    "encrypted_api_key": box.encrypt(HF_KEY, key_context(user_id, "higgsfield")),
                },
            )
    return AppUser(user_id, workspace_id, email)


async def insert_generation(
    stack: Stack, user: AppUser, prompt: str = "a beach at sunset", **columns: Any
) -> uuid.UUID:
    """What seed 003's front end does: insert a pending generation, as the user."""
    generation_id = uuid.uuid4()
    values = {"id": generation_id, "user_id": user.user_id, "prompt_text": prompt} | columns
    if "settings" in values:
        values["settings"] = Jsonb(values["settings"])
    async with signed_in(_url(stack), "authenticated", user.user_id) as conn:
        await _insert(conn, "generations", values)
    return generation_id


async def insert_batch(
    stack: Stack, user: AppUser, prompts: list[str], *, size: int | None = None, **columns: Any
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Several variations sharing a batch id, inserted in one transaction as the user."""
    batch_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in prompts]
    async with signed_in(_url(stack), "authenticated", user.user_id) as conn:
        for generation_id, prompt in zip(ids, prompts, strict=True):
            values = {
                "id": generation_id,
                "user_id": user.user_id,
                "prompt_text": prompt,
                "batch_id": batch_id,
                "batch_size": size or len(prompts),
            } | columns
            await _insert(conn, "generations", values)
    return batch_id, ids


async def insert_job(
    stack: Stack, user: AppUser, plan: Any = SAFE_PLAN, **columns: Any
) -> uuid.UUID:
    """What seed 000's assistant does: insert a pending job with its plan, as the user."""
    job_id = uuid.uuid4()
    values = {
        "id": job_id,
        "user_id": user.user_id,
        "workspace_id": user.workspace_id,
        "title": "Tidy the specs",
        "instruction": "Rename the draft",
        "plan": None if plan is None else Jsonb(plan),
    } | columns
    async with signed_in(_url(stack), "authenticated", user.user_id) as conn:
        await _insert(conn, "jobs", values)
    return job_id


async def request_cancel(stack: Stack, user: AppUser, table: str, row_id: uuid.UUID) -> int:
    """The app's cancel: set cancel_requested_at on the user's own row; rows changed."""
    async with signed_in(_url(stack), "authenticated", user.user_id) as conn:
        query = f"UPDATE {table} SET cancel_requested_at = now() WHERE id = %s"
        cur = await conn.execute(query, (row_id,))  # type: ignore[arg-type]
        return cur.rowcount


async def _insert(conn: Any, table: str, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    await conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))


def _url(stack: Stack) -> str:
    assert stack.settings.database_url is not None
    return stack.settings.database_url.get_secret_value()


async def row(stack: Stack, table: str, row_id: uuid.UUID) -> dict[str, Any]:
    """The row as the worker sees it."""
    found = await stack.fetchrow(f"SELECT * FROM {table} WHERE id = %s", row_id)
    assert found is not None
    return found


async def runs(client: Client, workflow_id: str) -> int:
    """How many runs the workflow id has had, once visibility lists any (it lags)."""

    async def count() -> int:
        found = 0
        async for _ in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            found += 1
        return found

    return await eventually(count, what=f"{workflow_id} listed")


async def exists(client: Client, workflow_id: str) -> bool:
    """Whether a workflow with this id was ever started."""
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


class _Deaf:
    """A dispatcher's row handler that acts on nothing."""

    async def handle(self, *_: Any) -> str:
        return "skipped"

    async def sweep(self) -> int:
        return 0


async def deafen(stack: Any) -> None:
    """Make the stack's dispatcher act on nothing from now on. Its first sweep (started when
    it began listening, with the real handler) is waited out first: on a loaded machine it
    could otherwise run after the test's inserts and act on them."""
    await asyncio.wait_for(stack.dispatcher.swept.wait(), timeout=30)
    stack.dispatcher.rows = _Deaf()
