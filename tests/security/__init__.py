"""Security tests: hostile input, secrets and access. Shared fixtures of a waiting world."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from temporalio.client import WorkflowHandle

from devstack.emulators.resend import sign_svix
from tests.generations.helpers import start, user_with_key
from tests.harness import Stack
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS
from workers.keys import Keyring, Use

APPROVER = "sec-owner@example.com"

# What must not change: the rows' identities and states (not updated_at, which a harmless
# read-only poll never touches anyway).
SNAPSHOT = {
    "jobs": "concat_ws('|', id, status, error_message, steel_session_id)",
    "job_steps": "concat_ws('|', id, status, error)",
    "approvals": "concat_ws('|', id, status, decided_by, decided_at, decision_channel, "
    "decision_note, delivery_status)",
    "generations": "concat_ws('|', id, status, higgsfield_job_id, error_message, result_urls)",
    "webhook_events": "concat_ws('|', provider, event_id, outcome)",
    "status_transitions": "id::text",
}


def db_snapshot(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every watched table (a sync connection, for threads)."""
    found: dict[str, tuple[int, str]] = {}
    for table, row in SNAPSHOT.items():
        query = (
            f"SELECT count(*), md5(coalesce(string_agg({row}, ',' ORDER BY {row}), '')) "
            f"FROM public.{table}"
        )
        result = conn.execute(query).fetchone()
        assert result is not None
        found[table] = (result[0], result[1])
    return found


def signed_headers(secret: str, body: str, *, svix_id: str | None = None) -> dict[str, str]:
    """Svix headers for ``body`` as Resend would send them, signed with ``secret``."""
    svix_id = svix_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time())
    return {
        "svix-id": svix_id,
        "svix-timestamp": str(ts),
        "svix-signature": sign_svix(secret, svix_id, ts, body),
        "content-type": "application/json",
    }


def links_in(text: str) -> dict[str, str]:
    """The approve/reject links of an approval email."""
    return dict(re.findall(r"^(Approve|Reject): (\S+)$", text, re.MULTILINE))


def looks_clean(body: str) -> bool:
    """No stack trace, exception repr or server-error page in a response body."""
    markers = ("Traceback", 'File "', "Internal Server Error", "Exception", "Error(")
    return not any(m in body for m in markers)


@dataclass
class World:
    """A job waiting on an approval gate and a generation waiting on Higgsfield."""

    stack: Stack
    job_handle: WorkflowHandle[Any, Any]
    job_id: uuid.UUID
    approval: dict[str, Any]
    request_email: dict[str, Any]
    generation_id: uuid.UUID
    generation_handle: WorkflowHandle[Any, Any]
    db_url: str

    @property
    def reply_token(self) -> str:
        """The token of the approval's Reply-To address."""
        local = self.request_email["reply_to"][0].split("@")[0]
        return str(local.removeprefix("approval+"))

    @property
    def links(self) -> dict[str, str]:
        """The approve and reject links of the request email."""
        return links_in(self.request_email["text"])

    @property
    def webhook_secret(self) -> str:
        """The Resend webhook secret the ingress verifies with."""
        secret = self.stack.settings.resend_webhook_secret
        assert secret is not None
        return secret.get_secret_value()

    @property
    def token_secret(self) -> str:
        """The approval-token key (derived from the master key)."""
        return Keyring.from_settings(self.stack.settings).signing_keys(Use.APPROVAL_TOKENS).current

    @property
    def hint_secret(self) -> str:
        """The Higgsfield webhook-token key (derived from the master key, another one)."""
        return Keyring.from_settings(self.stack.settings).signing_keys(Use.WEBHOOK_TOKENS).current

    def connect(self) -> psycopg.Connection[Any]:
        """A sync autocommit connection on the test database (for hypothesis threads)."""
        return psycopg.connect(self.db_url, autocommit=True)

    async def temporal_state(self) -> tuple[list[str], str, str]:
        """The gate statuses, the job's status and the generation's status, by query."""
        gates = await self.job_handle.query("approval_state")
        progress = await self.job_handle.query("progress")
        generation = await self.generation_handle.query("status")
        return [g["status"] for g in gates], progress["status"], generation["status"]

    async def assert_still_waiting(self) -> None:
        """The gate is pending, the job waits on it, the generation is still queued."""
        assert await self.temporal_state() == (["pending"], "waiting_approval", "queued")


async def waiting_world(stack: Stack, db_url: str) -> World:
    """Start a job that waits on its approval and a generation held queued."""
    stack.emulators.higgsfield.auto_advance = False
    request, handle, sent = await waiting_job(stack, [SAFE_STEPS[0], DELETE_STEP], APPROVER)
    row = await approval_row(stack, request.job_id)
    user_id = await user_with_key(stack)
    gen_request, gen_handle = await start(stack, user_id, "a quiet lake at dawn")

    async def queued() -> dict[str, Any] | None:
        return await stack.fetchrow(
            "SELECT status FROM generations WHERE id = %s AND status = 'queued'",
            gen_request.generation_id,
        )

    await eventually(queued, what="generation queued")
    world = World(
        stack=stack,
        job_handle=handle,
        job_id=request.job_id,
        approval=row,
        request_email=sent,
        generation_id=gen_request.generation_id,
        generation_handle=gen_handle,
        db_url=db_url,
    )
    waiting: World = await eventually(lambda: _is_waiting(world), what="workflows waiting")
    return waiting


async def _is_waiting(world: World) -> World | None:
    try:
        await world.assert_still_waiting()
    except AssertionError:
        return None
    return world


def json_body(data: Mapping[str, Any] | list[Any] | Any) -> str:
    """Compact JSON, as a webhook sender would post it."""
    return json.dumps(data, separators=(",", ":"))
