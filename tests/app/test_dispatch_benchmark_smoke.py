"""`python -m benchmarks.dispatch_latency` runs end to end and writes its figures (no
timing assertions: this proves the benchmark works, not how fast the pick-up is)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pick_up_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "dispatch.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.dispatch_latency",
            "--rows",
            "8",
            "--rate",
            "8",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["notify"]["rows"] == 8 and figures["sweep_at_start"]["rows"] == 5
    for part in ("notify", "sweep_at_start"):
        assert {"p50_ms", "p99_ms", "max_ms"} <= figures[part].keys()
    assert "insert → workflow started" in done.stdout
