"""`orchestrator worker`, `orchestrator ingress` and `orchestrator dev`: the long-running
processes. Each runs in the foreground until it is stopped; ``workers.cli.main`` exits
with its status."""

from __future__ import annotations

import importlib.util
from typing import Any

from workers.cli.common import DEV_EXTRA


def add_commands(sub: Any) -> None:
    """Add the ``dev``, ``worker`` and ``ingress`` commands."""
    sub.add_parser(
        "dev", help="run the whole stack locally (embedded Postgres and Temporal)"
    ).set_defaults(process=run_dev)
    sub.add_parser("worker", help="run the Temporal worker").set_defaults(process=run_worker)
    sub.add_parser("ingress", help="run the HTTP ingress (webhooks, approval links)").set_defaults(
        process=run_ingress
    )


def run_dev() -> None:
    """The dev stack: embedded servers, emulators, migrations, worker and ingress
    (``devstack/``, which the production image leaves out)."""
    if importlib.util.find_spec("devstack") is None:
        raise SystemExit(f"orchestrator: {DEV_EXTRA} (missing: devstack)")
    from devstack.dev import main as dev_main

    dev_main()


def run_worker() -> None:
    """The Temporal worker."""
    from workers.worker import main as worker_main

    worker_main()


def run_ingress() -> None:
    """The HTTP ingress."""
    from workers.processes import ingress_main

    ingress_main()
