"""`orchestrator worker`, `orchestrator dispatcher`, `orchestrator ingress` and
`orchestrator dev`: the long-running processes. Each runs in the foreground until it is
stopped; ``workers.cli.main`` exits with its status."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from workers.cli.common import DEV_EXTRA

QUEUES_HELP = (
    "task queues to poll, comma-separated: workflows, agent-jobs, email, generations, syncs, "
    "or all (default: WORKER_QUEUES, all)"
)


def add_commands(sub: Any) -> None:
    """Add the ``dev``, ``worker`` and ``ingress`` commands."""
    sub.add_parser(
        "dev", help="run the whole stack locally (embedded Postgres and Temporal)"
    ).set_defaults(process=run_dev)
    worker = sub.add_parser("worker", help="run the Temporal worker")
    worker.add_argument("--queues", metavar="QUEUES", help=QUEUES_HELP)
    worker.set_defaults(process=run_worker)
    sub.add_parser(
        "dispatcher",
        help="run only the dispatcher that starts what the app writes (workers then run "
        "with DISPATCHER_ENABLED=false)",
    ).set_defaults(process=run_dispatcher)
    sub.add_parser("ingress", help="run the HTTP ingress (webhooks, approval links)").set_defaults(
        process=run_ingress
    )


def run_dev(args: argparse.Namespace) -> None:
    """The dev stack: embedded servers, emulators, migrations, worker and ingress
    (``devstack/``, which the production image leaves out)."""
    if importlib.util.find_spec("devstack") is None:
        raise SystemExit(f"orchestrator: {DEV_EXTRA} (missing: devstack)")
    from devstack.dev import main as dev_main

    dev_main()


def run_worker(args: argparse.Namespace) -> None:
    """The Temporal worker, on the task queues ``--queues`` names (else WORKER_QUEUES)."""
    from workers.worker import main as worker_main

    worker_main(queues=args.queues)


def run_dispatcher(args: argparse.Namespace) -> None:
    """The dispatcher in a process of its own."""
    from workers.dispatch.process import main as dispatcher_main

    dispatcher_main()


def run_ingress(args: argparse.Namespace) -> None:
    """The HTTP ingress."""
    from workers.processes import ingress_main

    ingress_main()
