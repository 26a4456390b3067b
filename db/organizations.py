"""Organizations, their members and approval routes, as the operator's CLI manages them
(the app manages them as its users, under row level security)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("organizations")
Role = Literal["admin", "manager", "member"]


class OrganizationRow(BaseModel):
    """An organization and how many members it has."""

    id: UUID
    name: str
    personal_for: UUID | None
    members: int


class MemberRow(BaseModel):
    """A member of an organization."""

    user_id: UUID
    email: str | None
    role: Role
    backup_approver: bool


class RouteRow(BaseModel):
    """Who decides an action type in an organization."""

    action_type: str
    approver_roles: list[Role]
    quorum: int
    escalate_after_seconds: int | None


async def list_organizations(conn: Conn, *, limit: int = 50) -> list[OrganizationRow]:
    """Teams first, then organizations of one."""
    rows = await (await conn.execute(Q["list_organizations"], {"limit": limit})).fetchall()
    return [OrganizationRow.model_validate(r) for r in rows]


async def create_organization(conn: Conn, name: str) -> OrganizationRow:
    """A new team."""
    row = await (await conn.execute(Q["create_organization"], {"name": name})).fetchone()
    return OrganizationRow.model_validate(row)


async def list_members(conn: Conn, org_id: UUID) -> list[MemberRow]:
    """An organization's members, admins first."""
    rows = await (await conn.execute(Q["list_members"], {"org_id": org_id})).fetchall()
    return [MemberRow.model_validate(r) for r in rows]


async def set_member(
    conn: Conn, org_id: UUID, email: str, role: Role, *, backup: bool
) -> MemberRow | None:
    """Add the user with this address, or change their role; None if no user has it."""
    row = await (
        await conn.execute(
            Q["upsert_member"], {"org_id": org_id, "email": email, "role": role, "backup": backup}
        )
    ).fetchone()
    return MemberRow.model_validate(row) if row else None


async def set_route(
    conn: Conn,
    org_id: UUID,
    action_type: str,
    roles: list[Role],
    *,
    quorum: int,
    escalate_after_seconds: int | None,
) -> RouteRow:
    """Set who decides ``action_type`` ('*': any action without a route of its own)."""
    row = await (
        await conn.execute(
            Q["upsert_route"],
            {
                "org_id": org_id,
                "action_type": action_type,
                "roles": roles,
                "quorum": quorum,
                "escalate_after_seconds": escalate_after_seconds,
            },
        )
    ).fetchone()
    return RouteRow.model_validate(row)


async def list_routes(conn: Conn, org_id: UUID) -> list[RouteRow]:
    """An organization's approval routes."""
    rows = await (await conn.execute(Q["list_routes"], {"org_id": org_id})).fetchall()
    return [RouteRow.model_validate(r) for r in rows]
