"""The start of every long-running process (``orchestrator worker``, ``dispatcher``,
``ingress``): settings read and checked, logging configured with the secrets it must
never print, then the process's coroutine until it returns. A settings error is one line
on stderr and exit status 2."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from workers.logging import configure_logging, register_secrets
from workers.settings import Settings, SettingsError, exit_on_settings_error, load_settings


def run_process(run: Callable[[Settings], Coroutine[Any, Any, None]], **overrides: Any) -> None:
    """Run ``run(settings)``; ``overrides`` take precedence over the environment."""
    try:
        settings = load_settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        register_secrets(settings.secret_values())
        asyncio.run(run(settings))
    except SettingsError as error:
        exit_on_settings_error(error)
