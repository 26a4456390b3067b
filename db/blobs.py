"""Binary evidence (screenshots): rows and history carry only ids.

A blob's bytes are in its row or, when the worker has object storage, in the bucket under
``object_key`` (activities/object_store.py uploads them first), where the app can serve
them: a signed URL, or the user's own Storage session (the key is in their folder).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from db.queries import load_queries
from db.transitions import Conn, RowNotFound

Q = load_queries("blobs")


async def put_blob(
    conn: Conn,
    blob_id: UUID,
    content_type: str,
    data: bytes,
    *,
    object_key: str | None = None,
) -> None:
    """Record a blob under a caller-chosen id (a retry stores nothing new): its bytes, or
    (``object_key``) where the bytes were uploaded."""
    await conn.execute(
        Q["insert_blob"],
        {
            "id": blob_id,
            "content_type": content_type,
            "data": None if object_key else data,
            "object_key": object_key,
            "byte_size": len(data),
        },
    )


async def get_blob(conn: Conn, blob_id: UUID) -> tuple[str, bytes | None, str | None]:
    """(content type, bytes or None, object key or None) of a blob."""
    row = await (await conn.execute(Q["get_blob"], {"id": blob_id})).fetchone()
    if row is None:
        raise RowNotFound("blobs", blob_id)
    data = bytes(row["data"]) if row["data"] is not None else None
    return str(row["content_type"]), data, row["object_key"]


async def session_owner(conn: Conn, session_id: str) -> dict[str, Any] | None:
    """The job (``job_id``) and user (``user_id``) of a browser session."""
    return await (await conn.execute(Q["session_owner"], {"session_id": session_id})).fetchone()


async def bucket_rules(conn: Conn, bucket: str) -> tuple[int | None, list[str] | None] | None:
    """(size limit, MIME whitelist) of a Supabase Storage bucket, or None (no such row)."""
    present = await (await conn.execute(Q["has_buckets"])).fetchone()
    if not present or not present["present"]:
        return None
    row = await (await conn.execute(Q["bucket_rules"], {"bucket": bucket})).fetchone()
    if row is None:
        return None
    return row["file_size_limit"], row["allowed_mime_types"]
