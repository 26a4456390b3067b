"""Where a running dev stack is: written by `orchestrator dev`, read by the CLI, so
commands in another terminal reach the same database and Temporal server."""

from __future__ import annotations

import json
import os
from pathlib import Path

RUNTIME_KEYS = (
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_CONFIG_FILE",
    "INGRESS_PORT",
    "EMULATORS_URL",
    "SUPABASE_URL",
)


def runtime_path() -> Path:
    """The runtime file of the data directory."""
    return Path(os.environ.get("ORCHESTRATOR_HOME", ".orchestrator")).resolve() / "runtime.json"


def write_runtime() -> None:
    """Record the running stack's addresses (no secrets: the embedded URL has none)."""
    data = {key: os.environ[key] for key in RUNTIME_KEYS if key in os.environ}
    path = runtime_path()
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


def remove_runtime() -> None:
    """Forget the stack when it stops."""
    runtime_path().unlink(missing_ok=True)


def apply_runtime() -> None:
    """Use the running dev stack's addresses where the environment names none."""
    path = runtime_path()
    if path.exists():
        for key, value in json.loads(path.read_text()).items():
            os.environ.setdefault(key, value)
