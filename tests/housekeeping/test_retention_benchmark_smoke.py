"""benchmarks/retention.py runs (small, on the test's database): it fills, archives and
deletes with writers at work and reports every figure; no speed is asserted."""

from __future__ import annotations

from benchmarks.retention import measure


async def test_the_retention_benchmark_runs_and_reports(db_url: str) -> None:
    lines = await measure(db_url, rows=3000, writers=1, batch=200)
    text = "\n".join(lines)
    assert "retention today: 2,700 archived, 0 deleted" in text
    assert "writers during retention today" in text and "rows/s" in text
    assert "writers seen waiting on a lock" in text
