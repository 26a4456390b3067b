"""benchmarks/retention.py runs (small, on the test's database): it fills, archives and
deletes with writers at work and reports every figure; no speed is asserted."""

from __future__ import annotations

import re

from benchmarks.retention import measure


async def test_the_retention_benchmark_runs_and_reports(db_url: str) -> None:
    lines = await measure(db_url, rows=3000, writers=1, batch=200)
    text = "\n".join(lines)
    today = re.search(r"retention today: ([\d,]+) archived, 0 deleted", text)
    assert today, text
    # 2,700 are due; a row the writer holds at that moment is left for the next run.
    assert 2_690 <= int(today.group(1).replace(",", "")) <= 2_700, text
    assert "writers during retention today" in text and "rows/s" in text
    assert "writers seen waiting on a lock" in text
