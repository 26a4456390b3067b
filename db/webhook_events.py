"""Accepted webhook deliveries, so a replayed or duplicated one changes nothing."""

from __future__ import annotations

from db.transitions import Conn

SEEN = """
SELECT outcome FROM public.webhook_events
WHERE provider = %(provider)s AND event_id = %(event_id)s
"""
RECORD = """
INSERT INTO public.webhook_events (provider, event_id, event_type, subject_id, outcome)
VALUES (%(provider)s, %(event_id)s, %(event_type)s, %(subject_id)s, %(outcome)s)
ON CONFLICT (provider, event_id) DO NOTHING
"""


async def seen(conn: Conn, provider: str, event_id: str) -> str | None:
    """The recorded outcome of a delivery already handled, or None."""
    row = await (await conn.execute(SEEN, {"provider": provider, "event_id": event_id})).fetchone()
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
        RECORD,
        {
            "provider": provider,
            "event_id": event_id,
            "event_type": event_type,
            "subject_id": subject_id,
            "outcome": outcome,
        },
    )
