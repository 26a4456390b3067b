"""The README's walkthrough, run command by command against a fresh `orchestrator dev`,
so the README never lies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.dev_stack import start_dev, stop_dev

README = Path(__file__).parent.parent / "README.md"


def walkthrough() -> list[tuple[str, str]]:
    """(command, text its output must contain) for each line of the walkthrough block."""
    block = re.search(r"```bash walkthrough\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no walkthrough block"
    steps = []
    for line in block.group(1).splitlines():
        command, _, expected = line.partition("# →")
        steps.append((command.strip(), expected.strip()))
    return steps


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    steps = walkthrough()
    assert len(steps) >= 8
    proc, _ = start_dev(tmp_path / "home")
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        "ORCHESTRATOR_HOME": str(tmp_path / "home"),
    }
    try:
        for command, expected in steps:
            if command.startswith("source "):
                assert Path(command.split()[1]).parts[0] == ".venv"
                continue
            if command.startswith(("export ", "eval ")):
                env = _exported(command, env)  # kept for the lines after, as in a shell
                continue
            deadline = time.monotonic() + 30
            while True:  # outcomes arrive asynchronously: wait for the promised text
                result = subprocess.run(
                    ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60
                )
                if result.returncode == 0 and expected in result.stdout:
                    break
                assert time.monotonic() < deadline, (
                    f"{command!r} never printed {expected!r}:\n{result.stdout}{result.stderr}"
                )
                time.sleep(0.5)
    finally:
        stop_dev(proc)


def _exported(command: str, env: dict[str, str]) -> dict[str, str]:
    """The environment after ``command`` (an ``export`` or ``eval``); retried until every
    variable it sets is there and not empty (what it reads may take a moment to appear)."""
    deadline = time.monotonic() + 30
    while True:
        result = subprocess.run(
            ["bash", "-c", f"{command}\nenv -0"], env=env, capture_output=True, timeout=60
        )
        after = dict(
            item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item
        )
        added = {k: v for k, v in after.items() if env.get(k) != v}
        if result.returncode == 0 and added and all(added.values()):
            return env | added
        assert time.monotonic() < deadline, f"{command!r} set nothing:\n{result.stderr!r}"
        time.sleep(0.5)
