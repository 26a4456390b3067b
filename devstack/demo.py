"""Demo data for `orchestrator dev`: a user (with a Higgsfield key for the emulator), a
Notion workspace and one agent job that stops at an approval gate, so a newcomer can
approve it by replying to the email."""

from __future__ import annotations

import json
import uuid
from importlib import resources

from temporalio.client import Client

from activities.higgsfield import key_context
from db.pool import Pool
from workers.keys import credential_box
from workers.settings import Settings
from workers.starters import start_agent_job
from workflows.models.agent_job import AgentJobInput

DEMO_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
DEMO_WORKSPACE_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
DEMO_EMAIL = "demo.user@example.com"

SEED = """
INSERT INTO auth.users (id, email) VALUES (%(user_id)s, %(email)s) ON CONFLICT (id) DO NOTHING;
"""
SEED_PROFILE = """
INSERT INTO public.profiles (id, full_name, email_address)
VALUES (%(user_id)s, 'Demo User', %(email)s) ON CONFLICT (id) DO NOTHING
"""
SEED_WORKSPACE = """
INSERT INTO public.workspaces (id, user_id, platform_name, agent_email)
VALUES (%(workspace_id)s, %(user_id)s, 'Notion', 'assistant@agency.localhost')
ON CONFLICT (id) DO NOTHING
"""
SEED_HIGGSFIELD_KEY = """
INSERT INTO public.user_api_keys (user_id, service, encrypted_api_key)
VALUES (%(user_id)s, 'higgsfield', %(encrypted)s)
ON CONFLICT (user_id, service) DO NOTHING
"""
# Not a secret: the Higgsfield emulator accepts any "id:secret" key.
DEMO_HIGGSFIELD_KEY = "demo-key-id:demo-key-secret"
OPEN_DEMO_JOB = """
SELECT id FROM public.jobs
WHERE user_id = %(user_id)s AND status IN ('pending', 'running', 'waiting_approval')
LIMIT 1
"""


def demo_job_request(job_id: uuid.UUID | None = None) -> AgentJobInput:
    """The demo job of ``devstack/demo-job.json`` with a fresh job id."""
    text = resources.files("devstack").joinpath("demo-job.json").read_text()
    data = json.loads(text)
    data["job_id"] = str(job_id or uuid.uuid4())
    return AgentJobInput.model_validate(data)


async def seed_demo(pool: Pool, client: Client, settings: Settings) -> str:
    """Seed the demo rows; start a demo job unless one is still open. Returns its id."""
    params = {"user_id": DEMO_USER_ID, "workspace_id": DEMO_WORKSPACE_ID, "email": DEMO_EMAIL}
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(SEED, params)
        await conn.execute(SEED_PROFILE, params)
        await conn.execute(SEED_WORKSPACE, params)
        box = credential_box(settings)
        sealed = box.encrypt(DEMO_HIGGSFIELD_KEY, key_context(DEMO_USER_ID, "higgsfield"))
        await conn.execute(SEED_HIGGSFIELD_KEY, {**params, "encrypted": sealed})
        row = await (await conn.execute(OPEN_DEMO_JOB, params)).fetchone()
    if row is not None:
        return f"job-{row['id']} (still open)"
    request = demo_job_request()
    await start_agent_job(client, settings, request)
    return f"job-{request.job_id}"
