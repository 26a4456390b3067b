"""Evicting workflow runs that have sat idle in the worker's cache.

A job parked at an approval gate waits hours or days for a person. Temporal keeps its run
in the worker's sticky cache (~0.25 MB each here) until the cache's LRU needs the slot,
and has no idle eviction of its own (temporalio/features#573). A cache small enough for
thousands of parked jobs makes every burst of active jobs replay their histories again
and again; a large one holds every parked job in memory.

So the cache stays sized for active runs, and a run with no activation for
``WORKER_IDLE_EVICTION_SECONDS`` is evicted through the SDK core's own eviction request
(the path an LRU eviction takes), unless a local activity of it is still running (the
eviction would cancel it half way). Its next workflow task (the reply, a timer) replays its
history once.

A run that leaves the cache leaves its objects as cyclic garbage (the modules the sandbox
executed for it, its classes, the workflow instance), already in the collector's oldest
generation, which Python collects only in a full collection; once a burst is over, little
triggers one. So after the runs that left since the last full collection outnumber those
still cached, the sweep runs one (its cost follows the objects still live, so this bounds
it per run that left), and then trims the C heap, so pages the C allocator freed go back
to the OS. Memory on pages still partly used stays with the process (README, Performance:
RSS follows the high-water mark of cached runs, not their current count).

The runs' activity is read through the SDK's public runner interface
(:class:`TrackingRunner` wraps the worker's runner). The eviction request goes through
the worker's private ``_bridge_worker``, so it lives behind :mod:`workers.sdk_internals`,
and the worker evicts idle runs only where those patches are on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client
from temporalio.converter import SerializationContext, StorageDriverStoreContext
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.workflow import Info

from workers.logging import get_logger
from workers.sdk_internals import request_eviction

log = get_logger("workers.idle_eviction")

SWEEP_EVERY_MAX = 30.0  # seconds between sweeps, at most
COLLECT_AFTER_LEFT_MIN = 100  # runs that left the cache before a full collection, at least


def sweep_interval(idle_eviction: float) -> float:
    """Seconds between two sweeps: a run is evicted at most this late after its idle time."""
    return max(0.5, min(idle_eviction / 4, SWEEP_EVERY_MAX))


def collect_due(left_since_collect: int, cached: int) -> bool:
    """Whether the runs that left the cache since the last full collection call for one:
    they outnumber the runs still cached (a collection costs what is still live), and
    are at least ``COLLECT_AFTER_LEFT_MIN``."""
    return left_since_collect >= max(COLLECT_AFTER_LEFT_MIN, cached)


class CachedRuns:
    """The runs this worker holds, with when each last finished an activation.

    Activations run on the SDK's workflow thread pool, the sweep on the event loop: every
    access holds the lock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_active: dict[str, float] = {}
        self._requested: set[str] = set()
        self._local_pending: dict[str, set[int]] = {}
        self._dropped_since_trim = 0
        self.evictions_requested = 0

    def activated(
        self,
        run_id: str,
        *,
        scheduled_local: Iterable[int] = (),
        resolved_local: Iterable[int] = (),
    ) -> None:
        """The run finished an activation: it is active now. Local activities it scheduled
        (their sequence numbers) keep it from being idle until they are resolved: evicting
        a run cancels its running local activity."""
        with self._lock:
            self._last_active[run_id] = self._clock()
            self._requested.discard(run_id)
            pending = self._local_pending.setdefault(run_id, set())
            pending.difference_update(resolved_local)
            pending.update(scheduled_local)
            if not pending:
                del self._local_pending[run_id]

    def dropped(self, run_id: str) -> None:
        """The run left the cache (evicted for any reason, or completed)."""
        with self._lock:
            if self._last_active.pop(run_id, None) is not None:
                self._dropped_since_trim += 1
            self._requested.discard(run_id)
            self._local_pending.pop(run_id, None)  # a replay schedules them again

    def take_idle(self, idle_for: float) -> list[str]:
        """Runs idle at least ``idle_for`` seconds not yet asked to leave; marks them asked."""
        cutoff = self._clock() - idle_for
        with self._lock:
            idle = [
                run_id
                for run_id, at in self._last_active.items()
                if at <= cutoff
                and run_id not in self._requested
                and run_id not in self._local_pending
            ]
            self._requested.update(idle)
            self.evictions_requested += len(idle)
        return idle

    def take_dropped(self) -> int:
        """How many runs left the cache since the last call."""
        with self._lock:
            dropped, self._dropped_since_trim = self._dropped_since_trim, 0
        return dropped

    def __contains__(self, run_id: object) -> bool:
        with self._lock:
            return run_id in self._last_active

    def __len__(self) -> int:
        with self._lock:
            return len(self._last_active)


class TrackingRunner(WorkflowRunner):
    """A workflow runner that tells :class:`CachedRuns` when each run of ``inner`` was
    active and when it left the cache (SDK's public runner interface only)."""

    def __init__(self, inner: WorkflowRunner, runs: CachedRuns) -> None:
        self.inner = inner
        self.runs = runs

    def prepare_workflow(self, defn: Any) -> None:
        """Prepare as ``inner`` does (a validation instance: never activated, not tracked)."""
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """``inner``'s instance, its activations recorded."""
        return _TrackedInstance(self.inner.create_instance(det), self.runs)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        """Passed on to ``inner``."""
        self.inner.set_worker_level_failure_exception_types(types)


class _TrackedInstance(WorkflowInstance):
    """One run of the inner runner; each activation is recorded after it completes."""

    def __init__(self, inner: WorkflowInstance, runs: CachedRuns) -> None:
        self.inner = inner
        self.runs = runs

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self.inner.activate(act)
        if any(job.HasField("remove_from_cache") for job in act.jobs):
            self.runs.dropped(act.run_id)
        else:
            self.runs.activated(
                act.run_id,
                scheduled_local=[
                    c.schedule_local_activity.seq
                    for c in completion.successful.commands
                    if c.HasField("schedule_local_activity")
                ],
                resolved_local=[
                    job.resolve_activity.seq
                    for job in act.jobs
                    if job.HasField("resolve_activity") and job.resolve_activity.is_local
                ],
            )
        return completion

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return self.inner.get_external_store_context(command_info)

    def get_info(self) -> Info:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def call() -> None:
        trim(0)

    return call


class EvictingWorker(Worker):
    """Temporal's worker, evicting runs idle for ``idle_eviction`` seconds from its cache."""

    def __init__(
        self, client: Client, *, runs: CachedRuns, idle_eviction: float | None, **kwargs: Any
    ) -> None:
        super().__init__(client, **kwargs)
        self.cached_runs = runs
        self._idle_eviction = idle_eviction
        self._sweeper: asyncio.Task[None] | None = None
        self._trim = _malloc_trim()
        self._left_since_collect = 0
        self.full_collections = 0

    async def run(self) -> None:
        """Run the worker (see :meth:`Worker.run`) and sweep idle runs while it polls."""
        if self._idle_eviction is not None:
            self._sweeper = asyncio.create_task(self._sweep(self._idle_eviction))
        try:
            await super().run()
        finally:
            await self._stop_sweeping()

    async def shutdown(self) -> None:
        """Stop sweeping (no request reaches a core shutting down), then shut down."""
        await self._stop_sweeping()
        await super().shutdown()

    async def _stop_sweeping(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def _sweep(self, idle_eviction: float) -> None:
        interval = sweep_interval(idle_eviction)
        while True:
            await asyncio.sleep(interval)
            idle = self.cached_runs.take_idle(idle_eviction)
            try:
                for run_id in idle:
                    request_eviction(self, run_id)
            except Exception:  # a saving, never a reason to stop the worker
                log.exception("idle eviction failed; runs now leave the cache by its LRU only")
                return
            if idle:
                log.info("idle workflow runs evicted", runs=len(idle), idle_s=idle_eviction)
            left = self.cached_runs.take_dropped()
            if not left:
                continue
            self._left_since_collect += left
            if collect_due(self._left_since_collect, len(self.cached_runs)):
                # On the event loop's thread: the GIL is held throughout anyway, and
                # finalizers (an SDK client's __del__ scheduling its close) meet this
                # loop, not a workflow run's.
                gc.collect()
                self.full_collections += 1
                self._left_since_collect = 0
            if self._trim is not None:
                await asyncio.to_thread(self._trim)
