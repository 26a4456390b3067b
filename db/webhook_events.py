"""Accepted webhook deliveries, so a replayed or duplicated one changes nothing."""

from __future__ import annotations

from db.queries import load_queries
from db.transitions import Conn

Q = load_queries("webhook_events")


async def seen(conn: Conn, provider: str, event_id: str) -> str | None:
    """The recorded outcome of a delivery already handled, or None."""
    row = await (
        await conn.execute(Q["seen"], {"provider": provider, "event_id": event_id})
    ).fetchone()
    return str(row["outcome"]) if row else None


async def record(
    conn: Conn,
    provider: str,
    event_id: str,
    *,
    event_type: str,
    subject_id: str | None,
    outcome: str,
) -> None:
    """Remember a handled delivery and what came of it."""
    await conn.execute(
        Q["record"],
        {
            "provider": provider,
            "event_id": event_id,
            "event_type": event_type,
            "subject_id": subject_id,
            "outcome": outcome,
        },
    )
