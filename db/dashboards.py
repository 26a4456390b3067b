"""Dashboard refreshes: configured materialized views, refreshed without pg_cron.

A view is refreshed ``CONCURRENTLY`` when it can be (populated, with a unique index on
plain columns): dashboards keep reading the old contents meanwhile. Otherwise it is
refreshed plainly, which blocks its readers until it is done, and the result says so.
Two refreshes of one view never overlap: each holds a transaction-scoped advisory lock
and a second one finds it taken and is skipped.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import sql
from pydantic import BaseModel

from db.queries import load_queries
from db.transitions import Conn, RowNotFound

Q = load_queries("dashboards")


class DashboardRow(BaseModel):
    """A row of ``dashboard_refreshes`` and whether its view exists."""

    view_name: str
    every_minutes: int
    is_active: bool
    last_refreshed_at: datetime | None
    last_duration_ms: int | None
    last_concurrently: bool | None
    last_error: str | None
    present: bool


class ViewInfo(BaseModel):
    """A materialized view as the catalog has it."""

    schema_name: str
    view_name: str
    populated: bool
    has_unique_index: bool

    @property
    def concurrently(self) -> bool:
        """Whether REFRESH ... CONCURRENTLY applies (it needs both)."""
        return self.populated and self.has_unique_index


async def list_dashboards(conn: Conn) -> list[DashboardRow]:
    """Every configured view."""
    rows = await (await conn.execute(Q["list_dashboard_refreshes"])).fetchall()
    return [DashboardRow.model_validate(r) for r in rows]


async def view_info(conn: Conn, view_name: str) -> ViewInfo:
    """The materialized view; ``RowNotFound`` if there is none of that name."""
    row = await (await conn.execute(Q["materialized_view"], {"view_name": view_name})).fetchone()
    if row is None:
        raise RowNotFound("materialized view", view_name)
    return ViewInfo.model_validate(row)


async def refresh_view(conn: Conn, view: ViewInfo) -> bool:
    """Refresh under the view's lock, in the caller's transaction; False if another
    refresh of it holds the lock (nothing was done)."""
    locked = await (
        await conn.execute(
            Q["try_refresh_lock"], {"view_name": f"{view.schema_name}.{view.view_name}"}
        )
    ).fetchone()
    if not locked or not locked["locked"]:
        return False
    name = sql.Identifier(view.schema_name, view.view_name)
    if view.concurrently:
        await conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(name))
    else:
        await conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(name))
    return True


async def record_refresh(
    conn: Conn, view_name: str, *, duration_ms: int, concurrently: bool, error: str | None
) -> None:
    """Record how the last refresh of a configured view went."""
    await conn.execute(
        Q["record_dashboard_refresh"],
        {
            "view_name": view_name,
            "duration_ms": duration_ms,
            "concurrently": concurrently,
            "error": error,
        },
    )
