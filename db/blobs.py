"""Binary evidence (screenshots): rows and history carry only ids.

A blob's bytes are in its row or, when the worker has object storage, in the bucket under
``object_key`` (activities/object_store.py uploads them first), where the app can serve
them: a signed URL, or the user's own Storage session (the key is in their folder).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from db.transitions import Conn, RowNotFound

INSERT_BLOB = """
INSERT INTO public.blobs (id, content_type, data, object_key, byte_size)
VALUES (%(id)s, %(content_type)s, %(data)s, %(object_key)s, %(byte_size)s)
ON CONFLICT (id) DO NOTHING
"""
GET_BLOB = "SELECT content_type, data, object_key FROM public.blobs WHERE id = %(id)s"
# Whose screenshot: the job that holds the browser session.
SESSION_OWNER = """
SELECT id AS job_id, user_id FROM public.jobs WHERE steel_session_id = %(session_id)s
"""
# Supabase Storage's own rules of a bucket, when the database is a Supabase project's.
HAS_BUCKETS = "SELECT to_regclass('storage.buckets') IS NOT NULL AS present"
BUCKET_RULES = """
SELECT file_size_limit, allowed_mime_types FROM storage.buckets WHERE id = %(bucket)s
"""


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
        INSERT_BLOB,
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
    row = await (await conn.execute(GET_BLOB, {"id": blob_id})).fetchone()
    if row is None:
        raise RowNotFound("blobs", blob_id)
    data = bytes(row["data"]) if row["data"] is not None else None
    return str(row["content_type"]), data, row["object_key"]


async def session_owner(conn: Conn, session_id: str) -> dict[str, Any] | None:
    """The job (``job_id``) and user (``user_id``) of a browser session."""
    return await (await conn.execute(SESSION_OWNER, {"session_id": session_id})).fetchone()


async def bucket_rules(conn: Conn, bucket: str) -> tuple[int | None, list[str] | None] | None:
    """(size limit, MIME whitelist) of a Supabase Storage bucket, or None (no such row)."""
    present = await (await conn.execute(HAS_BUCKETS)).fetchone()
    if not present or not present["present"]:
        return None
    row = await (await conn.execute(BUCKET_RULES, {"bucket": bucket})).fetchone()
    if row is None:
        return None
    return row["file_size_limit"], row["allowed_mime_types"]
