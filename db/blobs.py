"""Binary evidence (screenshots) kept in Postgres; rows and history carry only ids."""

from __future__ import annotations

from uuid import UUID

from db.transitions import Conn, RowNotFound

INSERT_BLOB = """
INSERT INTO public.blobs (id, content_type, data) VALUES (%(id)s, %(content_type)s, %(data)s)
ON CONFLICT (id) DO NOTHING
"""
GET_BLOB = "SELECT content_type, data FROM public.blobs WHERE id = %(id)s"


async def put_blob(conn: Conn, blob_id: UUID, content_type: str, data: bytes) -> None:
    """Store a blob under a caller-chosen id (a retry stores nothing new)."""
    await conn.execute(INSERT_BLOB, {"id": blob_id, "content_type": content_type, "data": data})


async def get_blob(conn: Conn, blob_id: UUID) -> tuple[str, bytes]:
    """(content type, bytes) of a blob."""
    row = await (await conn.execute(GET_BLOB, {"id": blob_id})).fetchone()
    if row is None:
        raise RowNotFound("blobs", blob_id)
    return str(row["content_type"]), bytes(row["data"])
