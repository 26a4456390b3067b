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
    alist.add_argument("--org", type=uuid.UUID, help="only approvals of this organization")
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
    delegate = appr_sub.add_parser(
        "delegate", help="hand an approver's decision to a colleague of the organization"
    )
    delegate.add_argument("approval_id", type=uuid_arg, help="an approval id, or 'latest' pending")
    delegate.add_argument("--by", required=True, help="the approver who hands it on")
    delegate.add_argument("--to", required=True, help="the colleague's address")
    delegate.set_defaults(run=approvals_delegate)


async def approvals_list(args: argparse.Namespace) -> None:
    """List approvals."""
    from db import approvals

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await approvals.list_approvals(
            conn, status=args.status, limit=args.limit, org_id=args.org
        )
    lines = [
        f"{r.id}  {r.status:<9} job {r.job_id}  {r.action_type}: {r.description}" for r in rows
    ] or ["no approvals"]
    emit(args, rows, "\n".join(lines))


async def approvals_show(args: argparse.Namespace) -> None:
    """Show one approval."""
    from db import approval_teams, approvals

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        row = await get_or_fail(approvals.get_approval(conn, await _approval_id(conn, args)))
        seats = await approval_teams.list_approvers(conn, row.id)
        votes = await approval_teams.list_votes(conn, row.id)
        escalations = await approval_teams.list_escalations(conn, row.id)
    lines = [f"{k}: {v}" for k, v in row.model_dump(mode="json").items()]
    lines += [
        f"approver {s.seat}: {s.email} ({s.asked_because}"
        + (", handed on" if s.withdrawn_at else "")
        + (f", {s.delivery_status}" if s.delivery_status else "")
        + ")"
        for s in seats
    ]
    approved = sum(1 for v in votes if v.decision == "approve")
    if seats:
        lines.append(f"votes: {approved} of {row.quorum} approvals")
    lines += [
        f"  {v.voter}: {v.decision} by {v.channel} at {v.voted_at:%Y-%m-%d %H:%M}" for v in votes
    ]
    lines += [
        f"escalation {e.number}: {e.reason} -> {e.tier} {', '.join(e.asked)}" for e in escalations
    ]
    data = row.model_dump(mode="json") | {
        "approvers": [s.model_dump(mode="json") for s in seats],
        "votes": [v.model_dump(mode="json") for v in votes],
        "escalations": [e.model_dump(mode="json") for e in escalations],
    }
    emit(args, data, "\n".join(lines))


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


async def approvals_delegate(args: argparse.Namespace) -> None:
    """Hand an approver's seat to a colleague, as a reply or the app would."""
    from db import approvals
    from ingress.decisions import deliver_delegation

    _, pool, client = await operator_context()
    async with pool:
        async with pool.connection() as conn:
            row = await get_or_fail(approvals.get_approval(conn, await _approval_id(conn, args)))
        outcome = await deliver_delegation(
            client,
            row,
            delegated_by=args.by,
            delegate_to=args.to,
            channel="cli",
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
