"""`orchestrator approvals`: list, show and decide approval gates."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from workers.cli.common import CliError, emit, get_or_fail, newest_id, operator_context, uuid_arg


def add_commands(sub: Any) -> None:
    """Add the ``approvals`` command group."""
    appr = sub.add_parser("approvals", help="list and decide approval gates")
    appr_sub = appr.add_subparsers(dest="action", required=True, metavar="ACTION")
    alist = appr_sub.add_parser("list", help="approvals, pending first")
    alist.add_argument("--status", help="only approvals with this status")
    alist.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    alist.set_defaults(run=approvals_list)
    show = appr_sub.add_parser("show", help="one approval")
    show.add_argument("approval_id", type=uuid_arg, help="an approval id, or 'latest' pending")
    show.set_defaults(run=approvals_show)
    for decision in ("approve", "reject"):
        p = appr_sub.add_parser(decision, help=f"{decision} a pending approval")
        p.add_argument("approval_id", type=uuid_arg, help="an approval id, or 'latest' pending")
        p.add_argument("--by", required=True, help="who decides (recorded as decided_by)")
        p.add_argument("--note", help="why (recorded as the decision note)")
        p.set_defaults(run=approvals_decide, decision=decision)


async def approvals_list(args: argparse.Namespace) -> None:
    """List approvals."""
    from db import approvals

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await approvals.list_approvals(conn, status=args.status, limit=args.limit)
    lines = [
        f"{r.id}  {r.status:<9} job {r.job_id}  {r.action_type}: {r.description}" for r in rows
    ] or ["no approvals"]
    emit(args, rows, "\n".join(lines))


async def approvals_show(args: argparse.Namespace) -> None:
    """Show one approval."""
    from db import approvals

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        row = await get_or_fail(approvals.get_approval(conn, await _approval_id(conn, args)))
    text = "\n".join(f"{k}: {v}" for k, v in row.model_dump(mode="json").items())
    emit(args, row, text)


async def approvals_decide(args: argparse.Namespace) -> None:
    """Approve or reject a pending approval, as its gate's other channels do."""
    from db import approvals
    from ingress.decisions import deliver_decision

    _, pool, client = await operator_context()
    async with pool:
        async with pool.connection() as conn:
            row = await get_or_fail(approvals.get_approval(conn, await _approval_id(conn, args)))
        outcome = await deliver_decision(
            client,
            row,
            decision=args.decision,
            decided_by=args.by,
            channel="cli",
            note=args.note,
            update_id=f"cli-{uuid.uuid4()}",
        )
    if not outcome.applied:
        raise CliError(outcome.message)
    emit(args, outcome, outcome.message)


async def _approval_id(conn: Any, args: argparse.Namespace) -> uuid.UUID:
    """The approval named on the command line; ``latest``: the newest pending one."""
    from db import approvals

    if args.approval_id != "latest":
        return uuid.UUID(str(args.approval_id))
    pending = await approvals.list_approvals(conn, status="pending", limit=1)
    return newest_id(pending, "no pending approvals")
