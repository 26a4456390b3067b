"""`orchestrator health`: exit 0 only if this host's worker polled its task queue recently
(the checks: ``workers/health.py``); it also prints which vendor families are enabled."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from temporalio.service import RPCError

from workers.cli.common import CliError, emit
from workers.health import DEFAULT_MAX_AGE, identity_matcher, poller_checks


def add_commands(sub: Any) -> None:
    """Add the ``health`` command."""
    health = sub.add_parser(
        "health",
        help="exit 0 only if this host's worker polled its task queue recently (health check)",
    )
    health.add_argument(
        "--identity", help="the worker's exact identity (default: any worker of this host)"
    )
    health.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE.total_seconds(),
        help=f"seconds since the last poll (default {DEFAULT_MAX_AGE.total_seconds():.0f})",
    )
    health.add_argument(
        "--queues",
        metavar="QUEUES",
        help="the task queues the worker polls, as for `orchestrator worker --queues` "
        "(default: WORKER_QUEUES, all)",
    )
    health.set_defaults(run=health_cmd)


async def health_cmd(args: argparse.Namespace) -> None:
    from workers.families import family_statuses
    from workers.settings import load_settings
    from workers.temporal import connect_client

    queues = args.queues
    settings = load_settings() if queues is None else load_settings(worker_queues=queues)
    queue = settings.temporal_task_queue
    wanted, _ = identity_matcher(args.identity)
    max_age = timedelta(seconds=args.max_age)
    try:
        client = await connect_client(settings)
        checks = await poller_checks(client, queue, args.identity, queues=settings.queues)
    except (RuntimeError, RPCError) as exc:  # no server, refused TLS, no permission
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CliError(f"worker health unknown: cannot reach Temporal: {first}") from None
    families = {s.name: s.as_dict() for s in family_statuses(settings)}
    healthy = all(c.ok(max_age) for c in checks)
    data = {
        "status": "ok" if healthy else "not polling",
        "task_queue": queue,
        "identity": wanted,
        "pollers": {
            c.kind: {
                "task_queue": c.task_queue,
                "identity": c.identity,
                "seconds_since_poll": c.seconds_ago,
            }
            for c in checks
        },
        "families": families,
    }
    lines = [f"task queue {queue}, worker {wanted}:"]
    for c in checks:
        when = "never seen" if c.seconds_ago is None else f"polled {c.seconds_ago:.0f} s ago"
        where = "" if c.task_queue == queue else f" ({c.task_queue})"
        lines.append(f"  {c.kind}{where}: {when}{'' if c.ok(max_age) else '  (too long ago)'}")
    for name, family in families.items():
        lines.append(f"  {name}: {'enabled' if family['enabled'] else family['reason']}")
    emit(args, data, "\n".join(lines))
    if not healthy:
        stale = [c for c in checks if not c.ok(max_age)]
        on_queue = ", ".join(c.kind for c in stale if c.task_queue == queue)
        family_queues = ", ".join(c.kind for c in stale if c.task_queue != queue)
        missing = [
            f"{on_queue} poll" if on_queue else "",
            f"{family_queues} queue poll" if family_queues else "",
        ]
        raise CliError(
            f"worker not polling: no {' and no '.join(m for m in missing if m)} by {wanted} "
            f"on task queue {queue} in the last {max_age.total_seconds():.0f} s"
        )
