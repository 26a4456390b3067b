"""The live tests are deselected by the default run and selected by ``-m live``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def collect(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=HERE.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def test_the_default_run_deselects_every_live_test_and_m_live_selects_them() -> None:
    default = collect(str(HERE))
    live = collect(str(HERE), "-m", "live")

    assert "test_live_" not in default
    assert "deselected" in default
    selected = [line for line in live.splitlines() if "test_live_" in line]
    assert len(selected) >= 12
    assert all("test_selection" not in line for line in selected)
