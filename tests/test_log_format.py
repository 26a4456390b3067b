"""Logs are readable lines on a terminal and JSON everywhere else; secrets are redacted in
both."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import IO

import pytest
import structlog

from workers import logging as worker_logging
from workers.logging import configure_logging, get_logger, register_secrets
from workers.settings import SettingsError, load_settings

SECRET = "console-canary-7f3a9b"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    monkeypatch.setattr(worker_logging, "_SECRETS", type(worker_logging._SECRETS)())
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def _terminal() -> tuple[IO[str], int]:
    """A pseudo-terminal: the stream a process writes to, and the fd its reader reads."""
    reader, writer = os.openpty()
    return os.fdopen(writer, "w", buffering=1), reader


def _pipe() -> tuple[IO[str], int]:
    reader, writer = os.pipe()
    return os.fdopen(writer, "w", buffering=1), reader


def _log_through(stream: IO[str], reader: int, fmt: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Configure logging for ``fmt`` with ``stream`` as stderr, log three lines (two of
    ours carrying a secret, one of the SDK's through stdlib logging); what the reader got."""
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", fmt)
    register_secrets([SECRET])
    log = get_logger("tests.log_format")
    log.info("job started", job_id="job-1", token=SECRET, attempt=2)
    log.warning("call failed", note=f"key={SECRET}")
    logging.getLogger("temporalio.worker").info("from the SDK with %s", "stdlib")
    stream.close()  # everything written; the reader reads to the end
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 1 << 16)
        except OSError:  # a terminal whose writer closed: the end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    return b"".join(chunks).decode().replace("\r\n", "\n")  # a terminal writes \r\n


@pytest.mark.parametrize(
    ("fmt", "where", "readable", "coloured"),
    [
        ("auto", _terminal, True, True),  # `orchestrator dev` in a terminal
        ("auto", _pipe, False, False),  # a supervisor, docker, a log collector
        ("json", _terminal, False, False),  # asked for explicitly
        ("console", _pipe, True, False),
        ("console", _terminal, True, True),
    ],
)
def test_the_renderer_follows_the_format_and_the_stream(
    fmt: str,
    where: object,
    readable: bool,
    coloured: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream, reader = where()  # type: ignore[operator]
    out = _log_through(stream, reader, fmt, monkeypatch)
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 3, out
    assert SECRET not in out  # redacted whatever the renderer
    assert bool(ANSI.search(out)) is coloured
    if readable:
        plain = ANSI.sub("", out)
        assert not any(line.startswith("{") for line in lines)
        assert "[info     ] job started" in plain and "job_id=job-1" in plain
        assert "token=[redacted]" in plain and "attempt=2" in plain
        assert "[warning  ] call failed" in plain and "note='key=[redacted]'" in plain
        assert "from the SDK with stdlib" in plain and "[temporalio.worker]" in plain
    else:
        events = [json.loads(line) for line in lines]
        assert [e["event"] for e in events] == [
            "job started",
            "call failed",
            "from the SDK with stdlib",
        ]
        assert events[0]["token"] == "[redacted]" and events[0]["attempt"] == 2
        assert events[1]["note"] == "key=[redacted]" and events[1]["level"] == "warning"


def test_a_stream_that_cannot_say_whether_it_is_a_terminal_gets_json() -> None:
    class Sink:
        def write(self, text: str) -> int:
            return len(text)

    renderer = worker_logging._renderer("auto", Sink())
    assert isinstance(renderer, structlog.processors.JSONRenderer)


@pytest.mark.parametrize("fmt", ["text", "JSON", "Console", "", " auto", "pretty"])
def test_an_unknown_format_is_refused(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="log format must be auto, json or console"):
        worker_logging._renderer(fmt, sys.stderr)
    monkeypatch.setenv("LOG_FORMAT", fmt)
    with pytest.raises(SettingsError, match="invalid setting LOG_FORMAT"):
        load_settings()


def test_the_format_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_settings().log_format == "auto"
