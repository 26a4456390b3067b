"""`orchestrator orgs`: organizations, their members and who approves what."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from workers.cli.common import CliError, emit, operator_context

ROLES = ("admin", "manager", "member")


def add_commands(sub: Any) -> None:
    """Add the ``orgs`` command group."""
    orgs = sub.add_parser("orgs", help="organizations, members and approval routes")
    orgs_sub = orgs.add_subparsers(dest="action", required=True, metavar="ACTION")
    lst = orgs_sub.add_parser("list", help="organizations, teams first")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lst.set_defaults(run=orgs_list)
    create = orgs_sub.add_parser("create", help="create a team")
    create.add_argument("name", help="the team's name")
    create.set_defaults(run=orgs_create)
    show = orgs_sub.add_parser("show", help="an organization's members and approval routes")
    show.add_argument("org_id", type=uuid.UUID, help="an organization id")
    show.set_defaults(run=orgs_show)
    member = orgs_sub.add_parser("member", help="add a user to an organization, or change a role")
    member.add_argument("org_id", type=uuid.UUID, help="an organization id")
    member.add_argument("email", help="the user's address (as Supabase Auth has it)")
    member.add_argument("--role", choices=ROLES, default="member", help="their role")
    member.add_argument(
        "--backup", action="store_true", help="ask them first when an approval is escalated"
    )
    member.set_defaults(run=orgs_member)
    route = orgs_sub.add_parser("route", help="who approves an action type, and how many")
    route.add_argument("org_id", type=uuid.UUID, help="an organization id")
    route.add_argument("action_type", help="payment, delete, update, ... or '*' for any other")
    route.add_argument(
        "--roles", required=True, help="comma-separated roles that decide, e.g. manager,admin"
    )
    route.add_argument("--quorum", type=int, default=1, help="distinct approvals needed")
    route.add_argument(
        "--escalate-after-hours",
        type=float,
        help="escalate an undecided request after this long (backups, then admins)",
    )
    route.set_defaults(run=orgs_route)


async def orgs_list(args: argparse.Namespace) -> None:
    """List organizations."""
    from db import organizations

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        rows = await organizations.list_organizations(conn, limit=args.limit)
    lines = [
        f"{r.id}  {'own' if r.personal_for else 'team'}  {r.members} member(s)  {r.name}"
        for r in rows
    ] or ["no organizations"]
    emit(args, rows, "\n".join(lines))


async def orgs_create(args: argparse.Namespace) -> None:
    """Create a team."""
    from db import organizations

    if not args.name.strip():
        raise CliError("an organization needs a name")
    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        row = await organizations.create_organization(conn, args.name.strip())
    emit(args, row, f"created {row.id}: add an admin with `orchestrator orgs member {row.id} …`")


async def orgs_show(args: argparse.Namespace) -> None:
    """Show an organization's members and routes."""
    from db import organizations

    _, pool, _ = await operator_context()
    async with pool, pool.connection() as conn:
        members = await organizations.list_members(conn, args.org_id)
        routes = await organizations.list_routes(conn, args.org_id)
    lines = [
        f"  {m.role:<8} {m.email}{' (backup approver)' if m.backup_approver else ''}"
        for m in members
    ] or ["  no members"]
    lines += [
        f"  {r.action_type}: {' or '.join(r.approver_roles)}, {r.quorum} approval(s)"
        + (
            f", escalated after {r.escalate_after_seconds // 60} min"
            if r.escalate_after_seconds
            else ""
        )
        for r in routes
    ] or ["  no routes: the job's owner approves"]
    emit(
        args,
        {
            "members": [m.model_dump(mode="json") for m in members],
            "routes": [r.model_dump(mode="json") for r in routes],
        },
        "\n".join(lines),
    )


async def orgs_member(args: argparse.Namespace) -> None:
    """Add a member or change their role."""
    from psycopg.errors import CheckViolation

    from db import organizations

    _, pool, _ = await operator_context()
    try:
        async with pool, pool.connection() as conn:
            row = await organizations.set_member(
                conn, args.org_id, args.email, args.role, backup=args.backup
            )
    except CheckViolation as refused:  # the last admin (migration 0033)
        hint = refused.diag.message_hint
        raise CliError(
            f"{refused.diag.message_primary}: {hint}" if hint else str(refused)
        ) from None
    if row is None:
        raise CliError(f"no user has the address {args.email}")
    emit(args, row, f"{args.email} is a {row.role} of {args.org_id}")


async def orgs_route(args: argparse.Namespace) -> None:
    """Set who approves an action type."""
    import psycopg

    from db import organizations

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if not roles or any(r not in ROLES for r in roles):
        raise CliError(f"--roles: one or more of {', '.join(ROLES)}")
    if not 1 <= args.quorum <= 10:
        raise CliError("--quorum: between 1 and 10")
    seconds = None
    if args.escalate_after_hours is not None:
        seconds = int(args.escalate_after_hours * 3600)
        if seconds < 60:
            raise CliError("--escalate-after-hours: at least a minute")
    _, pool, _ = await operator_context()
    try:
        async with pool, pool.connection() as conn:
            row = await organizations.set_route(
                conn, args.org_id, args.action_type, roles, quorum=args.quorum,
                escalate_after_seconds=seconds,
            )  # fmt: skip
    except psycopg.errors.CheckViolation:
        raise CliError(
            f"action type {args.action_type!r}: lower-case letters and _ or '*'"
        ) from None
    except psycopg.errors.ForeignKeyViolation:
        raise CliError(f"no organization {args.org_id}") from None
    emit(
        args, row, f"{row.action_type}: {' or '.join(row.approver_roles)}, {row.quorum} approval(s)"
    )
