"""What the chaos test breaks: its own Postgres and Temporal dev server (both persist
their state across a restart) and a worker process it can SIGKILL and restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from db.migrate import migrate
from devstack.embedded import EmbeddedPostgres, TemporalDevServer
from devstack.emulators.runner import free_port
from tests.encryption import CONVERTER
from tests.harness import start_worker_process
from workers.settings import Settings
from workers.temporal import register_search_attributes

STOP_TIMEOUT = 30.0  # a worker drains for worker_graceful_shutdown_seconds, then exits
# How a worker exits when it starts while Postgres (after the pool's 30 s) or Temporal is
# down: its supervisor (docker compose: restart unless-stopped) starts it again.
BACKEND_DOWN_AT_START = (
    "PoolTimeout: pool initialization incomplete",
    "tcp connect error",
)


@dataclass
class Backends:
    """A Postgres server and a Temporal dev server owned by one test."""

    postgres: EmbeddedPostgres
    database_url: str
    temporal: TemporalDevServer
    client: Client

    async def stop_postgres(self) -> None:
        """Stop Postgres (a fast shutdown: every connection is cut)."""
        await self.postgres.stop()

    async def start_postgres(self) -> None:
        """Start Postgres again on the same data directory, then migrate."""
        url = await self.postgres.start()
        assert url == self.database_url, "the restarted Postgres has another address"
        await migrate(url)

    async def restart_temporal(self, down_for: float) -> None:
        """Stop the dev server, wait, start it again on its SQLite file and ports."""
        await self.temporal.stop()
        await asyncio.sleep(down_for)  # the outage itself
        await self.temporal.start()


@asynccontextmanager
async def own_backends(tmp: Path) -> AsyncIterator[Backends]:
    """Start Postgres and Temporal under ``tmp``; stop both at the end."""
    postgres = EmbeddedPostgres(tmp / "postgres" / "data")
    url = await postgres.start()
    temporal: TemporalDevServer | None = None
    try:
        await migrate(url)
        temporal = TemporalDevServer(
            tmp / "temporal",
            port=free_port(),
            ui_port=free_port(),
            log_path=tmp / "temporal.log",
        )
        await temporal.start()
        client = await Client.connect(temporal.address, data_converter=CONVERTER)
        await register_search_attributes(client, client.namespace)
        yield Backends(postgres, url, temporal, client)
    finally:
        if temporal is not None:
            await temporal.stop()
        await postgres.stop()


@dataclass
class WorkerSupervisor:
    """`orchestrator worker` in a child process that the test kills and restarts."""

    settings: Settings
    temporal_address: str
    log_path: Path  # every worker's stderr, for the post-mortem
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    restarts_without_backend: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    _stderr: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    _drainer: threading.Thread | None = None

    def start(self) -> None:
        """Start a worker; its stderr is drained so a chatty worker never blocks."""
        self.process = start_worker_process(self.settings, self.temporal_address)
        self._drainer = threading.Thread(target=self._drain, args=(self.process,), daemon=True)
        self._drainer.start()

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        with self.log_path.open("ab") as log:
            for line in process.stderr:
                log.write(line)
                self._stderr.append(line.decode("utf-8", "replace"))

    def stderr_tail(self, lines: int = 40) -> str:
        """The last lines the workers wrote to stderr."""
        return "".join(list(self._stderr)[-lines:])

    def check(self) -> None:
        """Restart a worker that exited by itself, as its supervisor would, noting why."""
        if self.process is None or self.process.poll() is None:
            return
        if self._drainer is not None:
            self._drainer.join(timeout=5)  # its last words
        tail = self.stderr_tail(15)
        if any(reason in tail for reason in BACKEND_DOWN_AT_START):
            self.restarts_without_backend += 1
        else:
            self.unexpected_exits.append(f"exit {self.process.returncode}:\n{tail}")
        self.start()

    async def kill_and_restart(self, down_for: float) -> None:
        """SIGKILL the worker wherever it is, wait, start a new one."""
        self.check()
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 10)
        self.kills += 1
        await asyncio.sleep(down_for)
        self.start()

    async def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code (SIGKILL if stuck)."""
        process, self.process = self.process, None
        if process is None:
            return 0
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
            return -9
