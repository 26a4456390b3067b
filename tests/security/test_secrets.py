"""No secret leaks: after a demo-like flow (an approval by reply, a generation with a stored
key, a metric sync with an encrypted token), no configured secret and no decrypted
credential appears in logs, workflow histories (even decrypted) or plain database columns,
and no personal data in plaintext history."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import pkgutil
import re
import signal
import subprocess
import sys
import typing
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import temporalio.workflow
from pydantic import BaseModel
from temporalio.testing import WorkflowEnvironment

import activities
from devstack.emulators.runner import free_port
from tests.encryption import readable_history
from tests.generations.helpers import HF_KEY, start, user_with_key
from tests.harness import Stack, running_stack
from tests.metrics import add_connection, backfill
from tests.workflows.approval_helpers import reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS
from workers.logging import configure_logging, get_logger, register_secrets
from workers.settings import settings_env
from workers.worker import ALL_WORKFLOWS

AD_TOKEN = f"EAAB-leak-canary-{uuid.uuid4().hex}"
# Ciphertext columns: the only places a credential may be stored (encrypted).
CIPHERTEXT = {"user_api_keys": "encrypted_api_key", "platform_connections": "credentials"}


def _worker(stack: Stack, address: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`orchestrator worker` at debug level, everything it prints going to ``log_path``."""
    env = settings_env(stack.settings) | {
        "TEMPORAL_ADDRESS": address,
        "LOG_LEVEL": "debug",
        "METRICS_BIND_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker"], env=env, stdout=out, stderr=out
        )


async def _run_demo_flow(stack: Stack) -> list[str]:
    """An approval decided by reply, a generation and a metric sync; their workflow ids."""
    _, job, sent = await waiting_job(stack, [SAFE_STEPS[0], DELETE_STEP], "leak@example.com")
    await reply(stack, sent["id"], "Approve\nGo ahead.")
    user_id = await user_with_key(stack)
    _, generation = await start(stack, user_id, "a lighthouse in fog")
    stack.emulators.meta.configure_account("1234567", campaigns=3)
    connection = await add_connection(stack, account_id="1234567", token=AD_TOKEN)
    sync = await backfill(stack, connection)
    results = await asyncio.wait_for(
        asyncio.gather(job.result(), generation.result(), sync.result()), timeout=90
    )
    assert [r.status for r in results] == ["completed", "completed", "success"]
    async with httpx.AsyncClient() as http:  # one refusal, so the ingress logs something
        refused = await http.post(f"{stack.ingress_url}/webhooks/resend", content=b"{}")
    assert refused.status_code == 401
    return [job.id, generation.id, sync.id]


async def _history_texts(stack: Stack, workflow_ids: list[str]) -> tuple[str, str]:
    """Every event of every workflow on the queue: as the server stores it, and as an
    operator with the codec reads it (every payload decrypted, failures included)."""
    queue = stack.settings.temporal_task_queue
    ids = set(workflow_ids)
    async for execution in stack.client.list_workflows(f"TaskQueue = '{queue}'"):
        ids.add(execution.id)
    stored: list[str] = []
    readable: list[str] = []
    for workflow_id in sorted(ids):
        history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
        raw = b"".join(event.SerializeToString() for event in history.events)
        stored += [raw.decode("utf-8", "replace"), history.to_json()]
        readable.append(await readable_history(history))
    return "\n".join(stored), "\n".join(readable)


async def _database_text(stack: Stack) -> str:
    """Every row of every table as JSON text, ciphertext columns left out."""
    tables = await stack.fetchall(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('public', 'auth') AND table_type = 'BASE TABLE'"
    )
    assert {"user_api_keys", "platform_connections", "jobs"} <= {t["table_name"] for t in tables}
    parts: list[str] = []
    for table in tables:
        name = table["table_name"]
        skip = CIPHERTEXT.get(name, "")
        rows = await stack.fetchall(
            f"SELECT to_jsonb(t) - %s AS row FROM {table['table_schema']}.{name} t", skip
        )
        parts += [json.dumps(r["row"], default=str) for r in rows]
    return "\n".join(parts)


def _leaks(secrets: dict[str, str], places: dict[str, str]) -> list[str]:
    return [
        f"{what} found in {where}"
        for what, secret in secrets.items()
        for where, text in places.items()
        if secret in text
    ]


async def test_no_secret_or_credential_in_logs_histories_or_rows(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = temporal_env.client.service_client.config.target_host
    log_path = tmp_path / "worker.log"
    caplog.set_level(logging.DEBUG)
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        worker = _worker(stack, address, log_path)
        try:
            with structlog.testing.capture_logs() as ingress_events:
                workflow_ids = await _run_demo_flow(stack)
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.to_thread(worker.wait, 30)
        stored_histories, histories = await _history_texts(stack, workflow_ids)
        rows = await _database_text(stack)
        secrets = {f"setting #{i}": v for i, v in enumerate(stack.settings.secret_values())}
        secrets |= {"Higgsfield key": HF_KEY, "Higgsfield key secret": HF_KEY.split(":")[1]}
        secrets |= {"ad-platform token": AD_TOKEN}
        stored = await stack.fetchrow("SELECT credentials::text AS c FROM platform_connections")
    worker_log = log_path.read_text()
    ingress_log = json.dumps(ingress_events, default=str) + "\n" + caplog.text
    ingress_log += "\n".join(str(r.exc_info) for r in caplog.records if r.exc_info)

    # The haystacks are real: debug lines, decrypted payloads, rows, ingress events.
    assert '"level": "debug"' in worker_log and "Tidy the specs" in histories
    assert "leak@example.com" in histories  # the approver, in the job's input
    # What Temporal stores has no plaintext of them: payloads are encrypted, search
    # attributes hold ids and statuses only.
    for plaintext in ("Tidy the specs", "leak@example.com", "a lighthouse in fog"):
        assert plaintext not in stored_histories, plaintext
    assert "leak@example.com" in rows
    assert any("rejected" in str(e.get("event")) for e in ingress_events), ingress_events
    assert stored is not None and AD_TOKEN not in stored["c"]  # stored encrypted
    # Stopped by SIGTERM above: a clean drain exits 0 (a crash does not).
    assert worker.returncode == 0, f"worker exited with {worker.returncode}"
    places = {
        "worker log": worker_log,
        "ingress log": ingress_log,
        "histories as stored": stored_histories,
        "histories decrypted (workflow inputs carry ids, never secrets)": histories,
        "rows": rows,
    }
    assert _leaks(secrets, places) == []


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_traceback_never_carries_a_secret(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = f"sk-canary-{uuid.uuid4().hex}"
    root = logging.getLogger()
    saved_handlers, saved_level, saved_config = root.handlers[:], root.level, structlog.get_config()
    try:
        configure_logging("info", fmt)  # binds its handler to the captured stderr
        register_secrets([secret])
        try:
            raise RuntimeError(f"the vendor refused key {secret}")
        except RuntimeError as exc:
            get_logger("tests.redaction").exception("structlog call failed")
            logging.getLogger("tests.stdlib").exception("stdlib call failed")
            get_logger("tests.redaction").warning("as values", error=exc, detail={"key": secret})
        output = capsys.readouterr().err
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_config)
    # The haystack is real: both lines and both tracebacks were written.
    for expected in ("structlog call failed", "stdlib call failed", "as values", "Traceback"):
        assert expected in output, output
    assert output.count("the vendor refused key [redacted]") >= 2, output
    assert secret not in output


SECRET_NAME = re.compile(r"secret|token|passw|api_?key|credential|cookie|authori[sz]", re.I)


def _fields(annotation: Any, seen: set[type]) -> list[str]:
    """``Model.field`` for every field of every model reachable from a type."""
    found: list[str] = []
    for arg in typing.get_args(annotation):
        found += _fields(arg, seen)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return found
        seen.add(annotation)
        for name, field in annotation.model_fields.items():
            found.append(f"{annotation.__name__}.{name}")
            found += _fields(field.annotation, seen)
    return found


def _crossing_functions() -> list[Any]:
    """Every function whose arguments and result go through Temporal's history."""
    functions: list[Any] = []
    for cls in ALL_WORKFLOWS:
        defn = temporalio.workflow._Definition.must_from_class(cls)
        functions.append(defn.run_fn)
        for handlers in (defn.signals, defn.queries, defn.updates):
            functions += [h.fn for h in handlers.values()]
    for module in pkgutil.walk_packages(activities.__path__, "activities."):
        for cls in vars(importlib.import_module(module.name)).values():
            for member in vars(cls).values() if isinstance(cls, type) else ():
                if hasattr(member, "__temporal_activity_definition"):
                    functions.append(member)
    return functions


def test_no_workflow_or_activity_input_or_result_carries_a_secret() -> None:
    # Payloads are encrypted, but the design passes ids: a secret is read where it is used
    # (user_api_keys, platform_connections, settings), never carried through history.
    functions = _crossing_functions()
    assert len(functions) > 30  # the haystack is real: every workflow and activity
    seen: set[type] = set()
    fields = [
        field
        for fn in functions
        for hint in typing.get_type_hints(fn).values()
        for field in _fields(hint, seen)
    ]
    assert "AgentJobInput.job_id" in fields and "GenerationInput.prompt_text" in fields
    assert [f for f in fields if SECRET_NAME.search(f.split(".")[1])] == []
