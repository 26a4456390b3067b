"""Serve an ASGI app on loopback in a background thread (dev stack and tests)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.types import ASGIApp


def webhook_client() -> httpx.Client:
    """The client an emulator posts its webhooks with: one connection pool for all of
    them (a client per post costs a TLS context each), released before a server's
    usual 5 s keep-alive ends."""
    return httpx.Client(timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ThreadedServer:
    """A uvicorn server running in a daemon thread; ``url`` has no trailing slash."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> ThreadedServer:
    """Start ``app`` with uvicorn on ``host:port`` (0: a free port); return once it listens."""
    port = port or free_port(host)
    # Idle connections stay open longer than clients keep them in their pools (httpx: 5 s),
    # so a pooled request never meets a connection the server is just closing.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only in the main thread; this one is not.
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.01)
    return ThreadedServer(server=server, thread=thread, url=f"http://{host}:{port}")
