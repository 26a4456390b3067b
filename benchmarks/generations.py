"""Scenario 2: Higgsfield generations that complete by webhook, and their transitions."""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

from activities.higgsfield import key_context
from benchmarks.common import insert_users, rate, start_all, wait_all
from benchmarks.stack import BenchStack
from db.generations import Q
from workers.keys import credential_box
from workers.starters import start_generation
from workflows.models.generation import GenerationInput

HF_KEY = "hf_bench_key_id:hf_bench_key_secret"


async def generation_requests(stack: BenchStack, count: int) -> list[GenerationInput]:
    """``count`` generations, each for a pro user of its own (no wait for a slot)."""
    box = credential_box(stack.settings)
    users = [uuid.uuid4() for _ in range(count)]
    async with stack.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await insert_users(cur, users, who="artist", tier="pro")
        await cur.executemany(
            Q["upsert_user_api_key"],
            [
                {
                    "user_id": u,
                    "service": "higgsfield",
                    "encrypted_api_key": box.encrypt(HF_KEY, key_context(u, "higgsfield")),
                }
                for u in users
            ],
        )
    return [
        GenerationInput(
            generation_id=uuid.uuid4(), user_id=u, prompt_text=f"a lighthouse at dusk, take {i}"
        )
        for i, u in enumerate(users)
    ]


async def start_generations(stack: BenchStack, count: int) -> list[Any]:
    """Create users and start ``count`` generations; their handles."""
    requests = await generation_requests(stack, count)
    return await start_all(requests, lambda r: start_generation(stack.client, stack.settings, r))


async def generations_throughput(stack: BenchStack, count: int) -> dict[str, Any]:
    """Start ``count`` generations and wait until every one has completed."""
    requests = await generation_requests(stack, count)
    started = time.time()
    handles = await start_all(requests, lambda r: start_generation(stack.client, stack.settings, r))
    _, ended = await wait_all(handles, stack.check_workers)
    rows = await stack.fetchall(
        "SELECT status, count(*) AS n FROM generations WHERE id = ANY(%(ids)s) GROUP BY status",
        {"ids": [r.generation_id for r in requests]},
    )
    seconds = ended - started
    completed = sum(int(r["n"]) for r in rows if r["status"] == "completed")
    return {
        "generations": count,
        "failed": count - completed,  # failed workflows and any that ended otherwise
        "seconds": round(seconds, 2),
        "per_s": rate(completed, seconds),
        "generation_ids": [str(r.generation_id) for r in requests],
    }


async def transitions_per_generation(stack: BenchStack, ids: list[str]) -> dict[str, float]:
    """Rows of ``status_transitions`` per generation."""
    rows = await stack.fetchall(
        "SELECT count(*) AS n FROM status_transitions "
        "WHERE entity = 'generations' AND entity_id = ANY(%(ids)s)",
        {"ids": [UUID(i) for i in ids]},
    )
    per = round(int(rows[0]["n"]) / len(ids), 2)
    return {"generations": per, "total": per}
