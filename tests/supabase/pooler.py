"""A transaction-mode connection pooler for tests, as Supavisor's port 6543 behaves.

Clients speak the Postgres protocol to it; it answers their startup itself and lends each
*transaction* a server connection from a small shared pool, taking it back when the
server says the session is idle again (ReadyForQuery 'I' with nothing outstanding). It
lends the least recently used connection, so two transactions of one client land on
different server sessions: a prepared statement, a SET or a session lock of the first is
not there for the second, exactly the failures a transaction pooler causes.

It listens on a Unix socket named for port 6543 (``<dir>/.s.PGSQL.6543``), so a client's
URL says port 6543 (what the worker detects) without taking a TCP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from pathlib import Path

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    kind = await reader.readexactly(1)
    (length,) = struct.unpack("!i", await reader.readexactly(4))
    return kind, await reader.readexactly(length - 4)


def _frame(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class Backend:
    """One server session."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer


class TransactionPooler:
    """Serve clients at ``<socket_dir>/.s.PGSQL.6543``; sessions of ``user`` on ``database``
    at the server's socket ``server_socket``."""

    def __init__(
        self, socket_dir: Path, server_socket: str, user: str, database: str, size: int = 3
    ) -> None:
        self.path = socket_dir / ".s.PGSQL.6543"
        self.server_socket = server_socket
        self.startup = (
            struct.pack("!i", PROTOCOL_3)
            + b"".join(
                k.encode() + b"\0" + v.encode() + b"\0"
                for k, v in (("user", user), ("database", database))
            )
            + b"\0"
        )
        self.size = size
        self.idle: deque[Backend] = deque()
        self.opened = 0
        self.available = asyncio.Condition()
        self.parameters: list[bytes] = []
        self.transactions = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Open the server sessions (the first tells the parameters clients get), listen."""
        for _ in range(self.size):
            self.idle.append(await self._open())
        self.server = await asyncio.start_unix_server(self._client, path=str(self.path))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for backend in self.idle:
            backend.writer.close()

    async def _open(self) -> Backend:
        reader, writer = await asyncio.open_unix_connection(self.server_socket)
        writer.write(struct.pack("!i", len(self.startup) + 4) + self.startup)
        self.opened += 1
        while True:
            kind, body = await _read_frame(reader)
            if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                raise RuntimeError("the test pooler handles trust authentication only")
            if kind == b"E":
                raise RuntimeError(f"server refused the pooler: {body!r}")
            if kind == b"S" and not self.parameters_done:
                self.parameters.append(_frame(kind, body))
            if kind == b"Z":
                self.parameters_done = True
                return Backend(reader, writer)

    parameters_done = False

    async def _acquire(self) -> Backend:
        async with self.available:
            while not self.idle:
                if self.opened < self.size:
                    return await self._open()
                await self.available.wait()
            self.transactions += 1
            return self.idle.popleft()  # least recently used first

    async def _release(self, backend: Backend) -> None:
        async with self.available:
            self.idle.append(backend)
            self.available.notify()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handshake(reader, writer)
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code in (SSL_REQUEST, GSS_REQUEST):
                writer.write(b"N")
                continue
            if code == CANCEL_REQUEST:
                raise ConnectionError("cancel requests are not passed on")
            break
        writer.write(_frame(b"R", struct.pack("!i", 0)))
        writer.write(b"".join(self.parameters))
        writer.write(_frame(b"K", struct.pack("!ii", 0, 0)))
        writer.write(_frame(b"Z", b"I"))
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend: Backend | None = None
        outstanding = 0  # Sync and Query messages not yet answered with ReadyForQuery
        answers: asyncio.Task[None] | None = None
        released = asyncio.Event()

        async def relay(current: Backend) -> None:
            nonlocal backend, outstanding
            while True:
                kind, body = await _read_frame(current.reader)
                writer.write(_frame(kind, body))
                if kind == b"Z":
                    outstanding -= 1
                    if body == b"I" and outstanding == 0:
                        await writer.drain()
                        backend = None
                        await self._release(current)
                        released.set()
                        return

        while True:
            kind, body = await _read_frame(reader)
            if kind == b"X":
                if backend is not None and answers is not None:
                    await answers
                return
            if backend is None:
                backend = await self._acquire()
                released.clear()
                answers = asyncio.create_task(relay(backend))
            if kind in (b"S", b"Q"):
                outstanding += 1
            backend.writer.write(_frame(kind, body))
            await backend.writer.drain()
            if kind in (b"S", b"Q"):
                # The next message may start a new transaction on another session: wait
                # until this one's answer is in if it is the end of a transaction.
                await asyncio.sleep(0)
