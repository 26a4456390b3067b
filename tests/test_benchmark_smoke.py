"""`python -m benchmarks.bench --quick` runs end to end and writes every figure (no timing
assertions: this proves the benchmark works, not how fast the system is)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIGURES = {
    "agent_jobs": ("jobs", "failed", "seconds", "jobs_per_s"),
    "agent_jobs_bare": ("workflows", "failed", "seconds", "per_s"),
    "reply_to_resume": ("samples", "p50_ms", "p99_ms", "webhook_answer_p50_ms"),
    "generations": ("generations", "failed", "seconds", "per_s"),
    "generations_bare": ("workflows", "failed", "seconds", "per_s"),
    "metric_upserts": (
        "rows",
        "upsert_meta_rows_per_s",
        "upsert_google_ads_rows_per_s",
        "copy_rows_per_s",
        "ratio_meta",
        "ratio_google_ads",
    ),
    "parked": (
        "jobs",
        "worker_rss_parked_mb",
        "worker_rss_settled_mb",
        "worker_rss_idle_mb",
        "resume_seconds",
    ),
}
ROUND_TRIPS = ("activities", "local_activities", "timers", "workflow_tasks")


def test_quick_benchmark_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    bench = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench", "--quick", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        bench.terminate()  # SIGTERM: the benchmark stops the stack it started
        stdout, stderr = bench.communicate(timeout=60)
        raise AssertionError(f"benchmark still running after 300 s:\n{stderr[-3000:]}") from None
    assert bench.returncode == 0, stderr[-3000:]
    figures = json.loads(out.read_text())
    for section, names in FIGURES.items():
        for name in names:
            assert isinstance(figures[section][name], int | float), (section, name)
    assert figures["agent_jobs"]["failed"] == 0
    assert figures["generations"]["failed"] == 0
    assert figures["parked"]["failed"] == 0
    assert figures["reply_to_resume"]["samples"] == figures["config"]["jobs"]
    for ratio in ("agent_jobs_ratio", "generations_ratio"):
        assert figures[ratio] > 0
        assert figures[f"{ratio}_our_runner"] > 0
    for bare, count in (("agent_jobs_bare", "jobs"), ("generations_bare", "generations")):
        for variant in (bare, f"{bare}_our_runner"):  # the SDK's sandbox runner, then ours
            assert figures[variant]["failed"] == 0
            assert figures[variant]["workflows"] == figures["config"][count]
    for kind in ("per_job", "per_generation"):
        assert figures[kind]["transitions"]["total"] > 0
        for name in ROUND_TRIPS:
            assert isinstance(figures[kind]["round_trips"][name], int)
            assert isinstance(figures[kind]["bare_round_trips"][name], int)
    assert len(figures["targets"]) == 7
    assert all(isinstance(t["pass"], bool) for t in figures["targets"])
    assert "PASS" in stdout or "MISS" in stdout


def test_db_calls_benchmark_runs_and_checks_its_work() -> None:
    """``python -m benchmarks.db_calls`` checks that every job completed with its four
    transitions logged before it prints a figure."""
    done = _run_module("benchmarks.db_calls", "--jobs", "8", timeout=120)
    figures = re.fullmatch(
        r"per job \(4 transitions and 1 update, 8 jobs\): client CPU ([\d.]+) ms, "
        r"Postgres CPU ([\d.]+) ms, wall ([\d.]+) ms\n",
        done.stdout,
    )
    assert figures is not None, done.stdout
    assert float(figures[3]) > 0


def test_alternating_rounds_benchmark_runs() -> None:
    """``python -m benchmarks.ab`` runs ours and bare in turns and prints every round."""
    done = _run_module("benchmarks.ab", "--jobs", "3", "--rounds", "2", timeout=240)
    rounds = re.findall(
        r"^round (\d): ours ([\d.]+) jobs/s, bare ([\d.]+)/s, ours/bare ([\d.]+); "
        r"CPU ms per job ours (\d+) \(server (\d+)\), bare (\d+) \(server (\d+)\)$",
        done.stdout,
        re.MULTILINE,
    )
    assert [r[0] for r in rounds] == ["1", "2"], done.stdout
    assert all(float(r[1]) > 0 and float(r[2]) > 0 and int(r[5]) > 0 for r in rounds)
    assert re.search(r"^round 2 bracketed: ours/bare [\d.]+$", done.stdout, re.MULTILINE)


def _run_module(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in the repository; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_scale_parks_jobs_in_waves(tmp_path: Path) -> None:
    """``--in-flight`` parks jobs a few at a time and resumes them the same way; every one
    resumes, with the worker's cache as asked."""
    out = tmp_path / "parked.json"
    _run_module(
        "benchmarks.scale",
        *("--scenario", "parked", "--sizes", "6", "--in-flight", "2", "--sticky-cache", "3"),
        *("--idle-eviction", "2", "--out", str(out)),
        timeout=300,
    )
    (run,) = json.loads(out.read_text())["scenarios"]["parked"]["runs"]
    assert (run["failed"], run["in_flight"], run["sticky_cache"]) == (0, 2, 3)
    assert run["worker_rss_peak_mb"] >= run["worker_rss_idle_mb"] > 0


def test_scale_reads_the_servers_counters_by_label() -> None:
    """``benchmarks.scale`` cross-checks actions with the dev server's ``action`` counter:
    only the default namespace, only that metric, summed by the label."""
    from benchmarks.scale import parse_counter

    page = "\n".join(
        [
            "# TYPE action counter",
            'action{action_type="grpc_StartWorkflowExecution",namespace="default"} 3',
            'action{action_type="grpc_StartWorkflowExecution",namespace="temporal_system"} 2',
            'action{namespace="default",action_type="command_StartTimer",x="1"} 1.5e+01',
            'action{namespace="default",action_type="command_StartTimer",x="2"} 1',
            'action_other{action_type="grpc_StartWorkflowExecution",namespace="default"} 9',
            'action{action_type_x="decoy",namespace="default"} 4',
        ]
    )
    assert parse_counter(page, "action", "action_type") == {
        "grpc_StartWorkflowExecution": 3.0,
        "command_StartTimer": 16.0,
    }


def test_scale_summarises_runs_and_growth() -> None:
    """Each figure as min / median / max per size, and its growth per unit of size."""
    from benchmarks.scale import growth, scenario_table, spread

    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0}
    summary = {
        1000: {"rss": spread([100.0, 110.0, 120.0])},
        3000: {"rss": spread([140.0, 150.0, 160.0])},
    }
    assert growth(summary) == {"rss": 0.02}
    assert growth({1000: summary[1000]}) == {}
    out = {
        "scenario": "parked",
        "runs": [{"size": 1000, "load_avg": 2.5}],
        "summary": {"1000": summary[1000]},
        "growth_per_unit": {"rss": 0.02},
    }
    assert "rss: 100 / 110 / 120" in scenario_table(out) and "load average" in scenario_table(out)


def test_scale_command_line() -> None:
    """Default: every scenario small, one run (the write ratio five); --full the targets'
    sizes, three runs; --sizes for one scenario only."""
    from benchmarks.scale import FULL_SIZES, QUICK_SIZES, SCENARIOS, parse_args

    quick = parse_args([])
    assert quick.scenarios == SCENARIOS and quick.sizes_of == QUICK_SIZES
    assert quick.runs_of["parked"] == 1 and quick.runs_of["metric-writes"] == 5
    full = parse_args(["--full", "--scenario", "parked", "--scenario", "listing"])
    assert full.sizes_of == {"parked": FULL_SIZES["parked"], "listing": FULL_SIZES["listing"]}
    assert full.runs_of == {"parked": 3, "listing": 3}
    assert max(FULL_SIZES["parked"]) == 10_000 and max(FULL_SIZES["listing"]) == 1_000_000
    one = parse_args(["--scenario", "parked", "--sizes", "1e3,2000", "--runs", "4"])
    assert one.sizes_of == {"parked": [1000, 2000]} and one.runs_of == {"parked": 4}
    for wrong in (
        ["--sizes", "10"],  # which scenario?
        ["--scenario", "parked", "--scenario", "listing", "--sizes", "10"],
        ["--scenario", "parked", "--sizes", "0"],
        ["--runs", "0"],
        ["--scenario", "nonsense"],
    ):
        with pytest.raises(SystemExit):
            parse_args(wrong)


def _scenario(name: str, sizes: list[int], figures: dict[str, list[float]]) -> dict[str, Any]:
    from benchmarks.scale import spread

    summary = {str(max(sizes)): {k: spread(v) for k, v in figures.items()}}
    return {"scenario": name, "sizes": sizes, "summary": summary}


@pytest.mark.parametrize(
    ("name", "figures", "met"),
    [
        # The worst run decides: one run under the ratio misses it.
        ("metric-writes", {"ratio_meta": [0.6, 0.49, 0.7], "ratio_google_ads": [0.6]}, [0, 1]),
        ("metric-writes", {"ratio_meta": [0.5], "ratio_google_ads": [0.51]}, [1, 1]),
        ("parked", {"worker_rss_peak_mb": [200, 251], "failed": [0, 0]}, [0, 1]),
        ("parked", {"worker_rss_peak_mb": [200, 249], "failed": [0, 1]}, [1, 0]),
        # An index is not enough when slow, nor fast enough without one.
        (
            "listing",
            {
                "heavy jobs.p99_ms": [3, 4],
                "heavy jobs.uses_index": [1, 1],
                "heavy approvals.p99_ms": [3, 12],
                "heavy approvals.uses_index": [1, 1],
                "typical jobs.p99_ms": [1, 1],
                "typical jobs.uses_index": [1, 0],
            },
            [0, 1, 0],
        ),
        (
            "actions",
            {"agent_job.fewer_than_naive": [0.5], "generation.fewer_than_naive": [0.29]},
            [1, 0],
        ),
        # Judged on the dispatcher's own latency; the generations' figure is capacity.
        ("dispatch", {"dispatcher.p99_ms": [900, 1000], "with_generations.p99_ms": [90]}, [0]),
        ("dispatch", {"dispatcher.p99_ms": [900, 999], "with_generations.p99_ms": [5000]}, [1]),
        ("dispatch", {"with_generations.p99_ms": [90]}, []),
    ],
)
def test_scale_targets_take_the_worst_run(
    name: str, figures: dict[str, list[float]], met: list[int]
) -> None:
    from benchmarks.scale import targets

    found = targets(_scenario(name, [10, 100], figures))
    assert [int(t["met"]) for t in found] == met, found
    assert all(t["size"] == 100 for t in found)


def test_scale_runs_a_scenario_end_to_end(tmp_path: Path) -> None:
    """``benchmarks.scale`` on its own stack: one user's and one organization's listings
    among a few thousand rows, as the app reads them, with their plans (no timing
    assertions). The default metrics ports are held meanwhile, as another stack on the
    machine would hold them: a benchmark stack's processes serve none (its ingress used to
    exit on 9465)."""
    out = tmp_path / "scale.json"
    with _holding(9464, 9465):
        done = _run_module(
            "benchmarks.scale",
            *("--scenario", "listing", "--sizes", "2000", "--runs", "1", "--out", str(out)),
            timeout=240,
        )
    figures = json.loads(out.read_text())["scenarios"]["listing"]
    run = figures["runs"][0]
    for who in ("typical", "heavy", "typical org", "heavy org"):
        for listing in ("jobs", "approvals", "pending approvals", "generations"):
            assert run[f"{who} {listing}"]["p99_ms"] > 0
            assert "Limit" in run[f"{who} {listing}"]["plan"]
    assert len(figures["targets"]) == len([k for k in run if k.startswith(("typical", "heavy"))])
    assert "listing: 1 runs" in done.stdout and "target " in done.stdout


@contextlib.contextmanager
def _holding(*ports: int) -> Iterator[None]:
    """Listen on ``ports`` of 127.0.0.1 (those free) for the block."""
    held: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
                held.append(sock)
            except OSError:  # someone else holds it: held all the same
                sock.close()
        yield
    finally:
        for sock in held:
            sock.close()
