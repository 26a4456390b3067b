"""`orchestrator ingress` as its own process: it serves, and SIGTERM ends it cleanly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import httpx
from temporalio.testing import WorkflowEnvironment

from devstack.emulators.runner import free_port
from tests.harness import running_stack
from tests.waiting import eventually
from workers.settings import settings_env


def _start_ingress(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "ingress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_ingress_serves_then_exits_0_on_sigterm(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    address = temporal_env.client.service_client.config.target_host
    async with running_stack(db_url, temporal_env.client, task_queue, worker=False) as stack:
        port = free_port()
        env = settings_env(stack.settings) | {
            "TEMPORAL_ADDRESS": address,
            "INGRESS_PORT": str(port),
            "LOG_LEVEL": "warning",
        }
        ingress = _start_ingress(env)
        try:
            async with httpx.AsyncClient() as http:

                async def healthy() -> bool:
                    assert ingress.poll() is None, ingress.stderr.read() if ingress.stderr else ""
                    try:
                        return (await http.get(f"http://127.0.0.1:{port}/healthz")).is_success
                    except httpx.TransportError:
                        return False

                await eventually(healthy, what="ingress health", timeout=30)
        finally:
            ingress.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(ingress.wait, 30)
            except subprocess.TimeoutExpired:
                ingress.kill()  # fail below without leaving it running
                await asyncio.to_thread(ingress.wait)
    assert ingress.returncode == 0, ingress.stderr.read() if ingress.stderr else ""
