"""`orchestrator dev`: starts everything, serves the UI and the ingress, reuses its data
on a second run, and stops cleanly on SIGTERM with no process left behind."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import psutil

from tests.dev_stack import start_dev, stop_dev
from workers.families import FAMILIES


def test_dev_stack_serves_and_stops_cleanly_and_reuses_its_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, lines = start_dev(home)
    try:
        assert lines["temporal"].startswith("127.0.0.1:")
        assert httpx.get(lines["temporal-ui"], timeout=10).status_code == 200
        health = httpx.get(f"{lines['ingress']}/healthz", timeout=10)
        families = {f.name: {"enabled": True} for f in FAMILIES}  # every key given
        assert health.json() == {
            "status": "ok",
            "database": "ok",
            "temporal": "ok",
            "families": families,
        }
        assert httpx.get(lines["outbox"], timeout=10).status_code == 200
        metrics = httpx.get(lines["metrics"], timeout=10)
        assert metrics.status_code == 200 and "temporal_" in metrics.text
        first_job = lines["demo-job"]
        assert (home / "runtime.json").exists()
    finally:
        children = stop_dev(proc)
    assert children, "expected the dev stack to run child processes"
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"left running: {[p.info for p in alive]}"
    assert not (home / "runtime.json").exists()
    assert _journal_mode(home / "temporal" / "temporal.sqlite") == "wal"
    assert (home / "postgres" / "PG_VERSION").exists()

    proc, lines = start_dev(home)  # the same data directory: the open demo job is still there
    try:
        assert lines["demo-job"] == f"{first_job} (still open)"
    finally:
        children = stop_dev(proc)
    psutil.wait_procs(children, timeout=20)


def _journal_mode(path: Path) -> str:
    """The SQLite file's journal mode (a write-ahead log stays recorded in the file)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])
