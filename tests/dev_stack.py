"""Starting and stopping `orchestrator dev` as a user would, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devstack.emulators.runner import free_port

EXPECTED_LINES = ("temporal", "temporal-ui", "ingress", "database", "demo-job", "demo-metric-sync")


def dev_env(home: Path) -> dict[str, str]:
    """The environment of a dev stack in ``home`` on free ports."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return env | {
        "ORCHESTRATOR_HOME": str(home),
        "TEMPORAL_PORT": str(free_port()),
        "TEMPORAL_UI_PORT": str(free_port()),
        "INGRESS_PORT": str(free_port()),
        "METRICS_BIND_ADDRESS": f"127.0.0.1:{free_port()}",
    }


def start_dev(home: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `orchestrator dev`; return it and the lines it printed (key → value)."""
    # Beside the home, not in it: the stack must create its home itself. Appended to, so
    # a second start keeps the first's.
    stderr = home.with_name(f"{home.name}-dev-stderr.log")
    with stderr.open("a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "dev"],
            env=dev_env(home),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while not all(k in lines for k in EXPECTED_LINES):
        line = proc.stdout.readline()
        if not line:
            tail = "\n".join(stderr.read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"orchestrator dev exited early with {proc.wait()}; its stderr:\n{tail}")
        key, _, value = line.strip().partition(": ")
        lines[key] = value
        assert time.monotonic() < deadline, "orchestrator dev did not start in time"
    return proc, lines


def stop_dev(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """SIGTERM the stack, check it exits 0; return the children it had."""
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    return children
