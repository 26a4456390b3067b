"""`python -m benchmarks.dispatch_latency` runs end to end and writes its figures (no
timing assertions: this proves the benchmark works, not how fast the pick-up is)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.dispatch_latency import parse_setups

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
    # Both setups by default, each on its stack: the dispatcher alone (its own latency,
    # the target) and in the worker with the generations running (the machine's capacity).
    assert list(figures) == ["alone", "worker"]
    for setup in figures.values():
        assert setup["notify"]["rows"] == 8 and setup["sweep_at_start"]["rows"] == 5
        for part in ("notify", "sweep_at_start"):
            assert {"p50_ms", "p99_ms", "max_ms"} <= setup[part].keys()
    assert "dispatcher alone (own process, no generation runs)" in done.stdout
    assert "dispatcher in the worker, generations running" in done.stdout


@pytest.mark.parametrize(
    "setups", ["", " , ", "alone,nobody", "ALONE", "worker;alone", "own process"]
)
def test_pick_up_benchmark_refuses_unknown_setups(setups: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="setups are some of"):
        parse_setups(setups)


def test_pick_up_benchmark_setups_keep_their_order_once() -> None:
    assert parse_setups("worker, alone,worker") == ["worker", "alone"]
