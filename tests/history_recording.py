"""Record workflow histories from tests (RECORD_HISTORIES=1) for the replay test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HISTORIES = Path(__file__).parent / "histories"


async def record_history(handle: Any, name: str) -> None:
    """Save the finished workflow's history as ``tests/histories/<name>.json`` when asked."""
    if os.environ.get("RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
