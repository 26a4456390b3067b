"""The object store of the settings (S3-compatible, e.g. Supabase Storage), for the worker
and the ingress."""

from __future__ import annotations

from activities.object_store import (
    ASSETS_BUCKET_RULES,
    BucketRules,
    ObjectStore,
    S3Config,
    S3Store,
)
from db.blobs import bucket_rules
from db.pool import Pool
from workers.settings import Settings


async def open_object_store(settings: Settings, pool: Pool) -> ObjectStore | None:
    """The S3-compatible store of the settings, with its bucket's rules (from Supabase's
    storage.buckets when the database has the row, else seed 003's); None when unset."""
    if settings.asset_storage_endpoint is None:
        return None
    settings.require("asset_storage_access_key_id", "asset_storage_secret_access_key")
    assert settings.asset_storage_access_key_id and settings.asset_storage_secret_access_key
    async with pool.connection() as conn:
        found = await bucket_rules(conn, settings.asset_storage_bucket)
    rules = ASSETS_BUCKET_RULES
    if found is not None:
        limit, mimes = found
        rules = BucketRules(max_bytes=limit, allowed_mime_types=tuple(mimes) if mimes else None)
    return S3Store(
        S3Config(
            endpoint_url=str(settings.asset_storage_endpoint).rstrip("/"),
            bucket=settings.asset_storage_bucket,
            region=settings.asset_storage_region,
            access_key_id=settings.asset_storage_access_key_id.get_secret_value(),
            secret_access_key=settings.asset_storage_secret_access_key.get_secret_value(),
        ),
        rules,
    )
