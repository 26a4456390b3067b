"""A workflow that runs the garbage collector on its workflow thread (tests only)."""

from __future__ import annotations

import asyncio
import gc

from temporalio import workflow


@workflow.defn
class CollectGarbage:
    """Collects garbage mid-activation; returns how many other tasks its loop then has."""

    @workflow.run
    async def run(self) -> int:
        gc.collect()
        return len(asyncio.all_tasks()) - 1  # without this run's own main task
