"""Screenshots of browser steps: stored once under a caller-chosen id, read back for the
approval email. With object storage they go to the job owner's folder of the bucket
(``<user_id>/screenshots/<job_id>_<blob_id>.png``), else into the blobs row."""

from __future__ import annotations

from uuid import UUID

from activities.object_store import ObjectStore, object_key
from db.blobs import get_blob, put_blob, session_owner
from db.transitions import Conn


async def store_screenshot(
    conn: Conn, store: ObjectStore | None, blob_id: UUID, data: bytes, *, session_id: str
) -> None:
    """Keep a PNG screenshot; a retry (after a failed upload or a crash) writes the same
    object and row again, never a second one."""
    key = None
    if store is not None:
        owner = await session_owner(conn, session_id)
        if owner is not None and owner["user_id"] is not None:
            key = object_key(owner["user_id"], "screenshots", f"{owner['job_id']}_{blob_id}.png")
            await store.put(key, data, "image/png")
    await put_blob(conn, blob_id, "image/png", data, object_key=key)


async def read_screenshot(
    conn: Conn, store: ObjectStore | None, blob_id: UUID
) -> tuple[str, bytes]:
    """(content type, bytes) of a stored screenshot, from its row or the bucket."""
    content_type, data, key = await get_blob(conn, blob_id)
    if data is None:
        if store is None or key is None:
            raise LookupError(f"screenshot {blob_id} is in object storage, which is not set up")
        _, data = await store.get(key)
    return content_type, data
