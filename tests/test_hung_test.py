"""A hung test fails on its own (pytest-timeout, pyproject.toml) and the suite goes on:
the worker it hung is replaced, and the tests after it run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_hung_test_fails_alone_and_the_suite_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(
        "import time\n\n\n"
        "def test_hangs():\n    time.sleep(120)\n\n\n"
        "def test_after_it():\n    assert True\n"
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", str(tmp_path / "test_hangs.py")),
            *("-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path)),
            *("-n", "1", "--timeout", "3", "-p", "no:cacheprovider", "-q"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert "1 failed, 1 passed" in out, out[-3000:]
    assert "crashed while running 'test_hangs.py::test_hangs'" in out, out[-3000:]
