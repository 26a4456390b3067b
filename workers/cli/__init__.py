"""`orchestrator`: run the processes and operate jobs and approvals from a terminal.

Errors are one line on stderr with a non-zero exit; ``--json`` prints machine-readable
output for scripting. This module assembles the parser from the command modules (one per
command group) and runs a command; what they share is in ``workers/cli/common.py``,
which they import (never this module).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from workers.cli import (
    app,
    approvals,
    generations,
    health,
    jobs,
    keys,
    migrate,
    notifications,
    orgs,
    processes,
    search_attributes,
    syncs,
    threads,
)
from workers.cli.common import CliError, exit_without_teardown
from workers.settings import SettingsError

# The command groups in the order `orchestrator --help` lists them.
COMMAND_MODULES = (
    processes,
    migrate,
    search_attributes,
    jobs,
    approvals,
    orgs,
    generations,
    keys,
    syncs,
    threads,
    notifications,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Durable agent jobs, approval gates, generations and metric syncs on "
        "Temporal. Settings come from the environment (see README).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripting")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    if importlib.util.find_spec("devstack") is not None:  # not in the production image
        from devstack.outbox import add_commands as add_outbox_commands

        add_outbox_commands(sub)
    health.add_commands(sub)
    app.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``orchestrator``: run the command, exit with its status."""
    exit_without_teardown(run_command(argv))


def run_command(argv: list[str] | None = None) -> int:
    """Run one ``orchestrator`` command; its exit status."""
    args = _parser().parse_args(argv)
    process: Callable[[argparse.Namespace], None] | None = getattr(args, "process", None)
    if process is not None:
        process(args)
        return 0
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, None]] = args.run
    try:
        asyncio.run(run(args))
    except SettingsError as exc:
        print(f"orchestrator: {exc.code}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"orchestrator: cannot connect: {exc}", file=sys.stderr)
        return 1
    return 0
