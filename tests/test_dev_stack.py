"""`orchestrator dev`: starts everything, serves the UI and the ingress, reuses its data
on a second run, and stops cleanly on SIGTERM with no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from emulators.runner import free_port

EXPECTED = ("temporal", "temporal-ui", "ingress", "database", "demo-job")


def _start(home: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {
        "ORCHESTRATOR_HOME": str(home),
        "TEMPORAL_PORT": str(free_port()),
        "TEMPORAL_UI_PORT": str(free_port()),
        "INGRESS_PORT": str(free_port()),
        "METRICS_BIND_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while not all(k in lines for k in EXPECTED):
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"orchestrator dev exited early with {proc.wait()}")
        key, _, value = line.strip().partition(": ")
        lines[key] = value
        assert time.monotonic() < deadline, "orchestrator dev did not start in time"
    return proc, lines


def _stop(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "expected the dev stack to run child processes"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    return children


def test_dev_stack_serves_and_stops_cleanly_and_reuses_its_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, lines = _start(home)
    try:
        assert lines["temporal"].startswith("127.0.0.1:")
        assert httpx.get(lines["temporal-ui"], timeout=10).status_code == 200
        health = httpx.get(f"{lines['ingress']}/healthz", timeout=10)
        assert health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
        assert httpx.get(lines["outbox"], timeout=10).status_code == 200
        first_job = lines["demo-job"]
        assert (home / "runtime.json").exists()
    finally:
        children = _stop(proc)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"left running: {[p.info for p in alive]}"
    assert not (home / "runtime.json").exists()
    assert (home / "temporal" / "temporal.sqlite").exists()
    assert (home / "postgres" / "PG_VERSION").exists()

    proc, lines = _start(home)  # the same data directory: the open demo job is still there
    try:
        assert lines["demo-job"] == f"{first_job} (still open)"
    finally:
        children = _stop(proc)
    psutil.wait_procs(children, timeout=20)
