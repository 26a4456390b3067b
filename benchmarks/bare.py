"""The baseline: a bare Temporal workflow shaped like ours, with no-op activities.

The plan (how many activities and local activities run before the message, inside its
handler and after it) is read from a history of our own workflow, so the baseline
makes as many server round trips as ours, with none of our work in them.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import activity, workflow

BARE_TASK_QUEUE = "bench-bare"
NOOP_TIMEOUT = timedelta(seconds=30)

StepKind = Literal["activity", "local"]


class BarePlan(BaseModel):
    """What a bare workflow runs: steps, the message it waits for, steps after it."""

    before: list[StepKind]
    message: Literal["update", "signal"]
    in_handler: int = 0  # local activities the update handler runs (ours persists there)
    after: list[StepKind]
    wait_timeout: timedelta = timedelta(hours=1)  # ours waits with a timer too


@activity.defn(name="bare_noop")
async def bare_noop(value: str) -> str:
    """Do nothing."""
    return value


@activity.defn(name="bare_notify")
async def bare_notify(value: str) -> str:
    """Tell the benchmark (on stdout) that this workflow is about to wait for its message."""
    sys.stdout.write(f"{activity.info().workflow_id}\n")
    sys.stdout.flush()
    return value


@workflow.defn(name="BareJob", sandboxed=True)
class BareJob:
    """Steps, a wait for one update or signal (with a timer, as ours), then steps."""

    @workflow.init
    def __init__(self, plan: BarePlan) -> None:
        self._plan = plan
        self._released = False
        self._waiting = False

    @workflow.run
    async def run(self, plan: BarePlan) -> int:
        """Run the plan; returns how many steps ran."""
        notify_at = max((i for i, k in enumerate(plan.before) if k == "activity"), default=-1)
        for index, kind in enumerate(plan.before):
            await self._step(kind, notify=index == notify_at)
        self._waiting = True
        await workflow.wait_condition(lambda: self._released, timeout=plan.wait_timeout)
        for kind in plan.after:
            await self._step(kind)
        return len(plan.before) + plan.in_handler + len(plan.after)

    async def _step(self, kind: StepKind, *, notify: bool = False) -> None:
        if kind == "local":
            await workflow.execute_local_activity(
                bare_noop, "local", start_to_close_timeout=NOOP_TIMEOUT
            )
        else:
            await workflow.execute_activity(
                bare_notify if notify else bare_noop,
                "activity",
                start_to_close_timeout=NOOP_TIMEOUT,
            )

    @workflow.update(name="release")
    async def release(self, value: str) -> str:
        """The update our webhook sends (ours persists the decision in a local activity)."""
        for _ in range(self._plan.in_handler):
            await workflow.execute_local_activity(
                bare_noop, value, start_to_close_timeout=NOOP_TIMEOUT
            )
        self._released = True
        return value

    @release.validator
    def _validate_release(self, value: str) -> None:
        # Refused until the workflow waits (no history event): the benchmark retries, so
        # the update never rides on the notifying activity's completion (ours cannot either).
        if self._released or not self._waiting:
            raise ValueError("not waiting for a release")

    @workflow.signal(name="release_signal")
    def release_signal(self, value: str) -> None:
        """The signal our webhook sends (ours: the Higgsfield hint)."""
        self._released = True


def plan_from_tokens(tokens: list[str]) -> BarePlan:
    """A plan from a history's tokens (see ``benchmarks.history.tokens``)."""
    kinds: dict[str, StepKind] = {"A": "activity", "L": "local"}
    if "U" in tokens:
        start, end = tokens.index("U"), tokens.index("u")
        return BarePlan(
            before=[kinds[t] for t in tokens[:start] if t in kinds],
            message="update",
            in_handler=sum(1 for t in tokens[start:end] if t == "L"),
            after=[kinds[t] for t in tokens[end:] if t in kinds],
        )
    split = tokens.index("S")
    return BarePlan(
        before=[kinds[t] for t in tokens[:split] if t in kinds],
        message="signal",
        after=[kinds[t] for t in tokens[split:] if t in kinds],
    )
