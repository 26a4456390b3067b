"""Where files go: generation results and, with object storage, step screenshots.

Two stores behind one small interface: a local folder (the default, and what
``orchestrator dev`` uses) and any S3-compatible object store, among them Supabase
Storage's S3 endpoint (``https://<project>.storage.supabase.co/storage/v1/s3``: path-style
addressing, SigV4, the project's region, S3 access keys from the dashboard). Keys follow
seed 003's layout, ``<user_id>/<kind>/<name>``, so the app's folder-based policies on
``storage.objects`` give each user their own files.

Supabase refuses an upload over the bucket's size limit or of a MIME type outside its
whitelist; other S3 stores do not, so the same rules (``BucketRules``, read from
``storage.buckets`` when the database has it) are checked here before every upload,
whatever the store. A key is chosen by the caller and is the same on a retry, so a retried
upload replaces the object instead of adding one.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

MB = 1024 * 1024


class ObjectRefused(ValueError):
    """The bucket's rules refuse this object (too large, a MIME type not allowed, a bad key)."""


@dataclass(frozen=True)
class BucketRules:
    """A bucket's upload rules, as Supabase Storage applies them."""

    max_bytes: int | None = None  # None: no limit of the bucket's own
    allowed_mime_types: tuple[str, ...] | None = None  # None: any; "image/*" wildcards

    def check(self, key: str, content_type: str, size: int) -> None:
        """Raise ``ObjectRefused`` unless the object may be uploaded under ``key``."""
        check_key(key)
        if self.max_bytes is not None and size > self.max_bytes:
            raise ObjectRefused(
                f"{key}: {size} bytes is over the bucket's limit of {self.max_bytes} bytes"
            )
        if self.allowed_mime_types is not None and not mime_allowed(
            content_type, self.allowed_mime_types
        ):
            raise ObjectRefused(f"{key}: MIME type {content_type!r} is not allowed in the bucket")


# Seed 003's bucket `assets`: 50 MB, media and documents only. Used when the database
# has no storage.buckets row to read (plain Postgres, another S3 store).
ASSETS_BUCKET_RULES = BucketRules(
    max_bytes=50 * MB,
    allowed_mime_types=(
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "audio/mpeg",
        "audio/wav",
        "audio/mp4",
        "application/pdf",
    ),
)

_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def mime_allowed(content_type: str, allowed: tuple[str, ...]) -> bool:
    """Supabase's rule: ``type/subtype`` equals an allowed entry or matches ``type/*``."""
    mime = content_type.strip().lower()
    if not _MIME.fullmatch(mime):
        return False
    kind = mime.split("/")[0]
    return any(a.lower() == mime or a.lower() == f"{kind}/*" for a in allowed)


def check_key(key: str) -> None:
    """A key is ``<user uuid>/<segment>/.../<name>``: no empty, dot or odd segment."""
    parts = key.split("/")
    if len(parts) < 2 or not all(_SEGMENT.fullmatch(p) for p in parts) or ".." in key:
        raise ObjectRefused(f"{key!r} is not a valid object key")
    try:
        UUID(parts[0])
    except ValueError:
        raise ObjectRefused(f"{key!r} does not start with the owner's user id") from None


def object_key(user_id: UUID, kind: str, name: str) -> str:
    """``<user_id>/<kind>/<name>``: seed 003's layout (``kind``: image, screenshots, ...)."""
    key = f"{user_id}/{kind}/{name}"
    check_key(key)
    return key


def sniff_image_type(data: bytes) -> str | None:
    """The image type its first bytes say (PNG, JPEG, GIF, WebP), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class ObjectStore(Protocol):
    """Put, get and share objects of one bucket."""

    rules: BucketRules
    description: str

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (replacing what is there), after ``rules.check``."""

    async def get(self, key: str) -> tuple[str, bytes]:
        """(content type, bytes) of the object."""

    async def signed_url(self, key: str, expires_in: int = 300) -> str:
        """A URL that reads the object for ``expires_in`` seconds."""

    async def delete(self, key: str) -> None:
        """Delete the object; deleting one that is not there succeeds (retention)."""


class LocalFolderStore:
    """Objects as files under a folder (``ASSET_STORAGE_DIR``); ``orchestrator dev``'s store."""

    def __init__(self, root: Path, rules: BucketRules = ASSETS_BUCKET_RULES) -> None:
        self.root = root
        self.rules = rules
        self.description = f"folder {root}"

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write the file whole (a temporary file renamed), so a reader never sees half."""
        self.rules.check(key, content_type, len(data))
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)

    async def get(self, key: str) -> tuple[str, bytes]:
        """The file's bytes; its type from its name."""
        path = self._path(key)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return content_type, path.read_bytes()

    async def signed_url(self, key: str, expires_in: int = 300) -> str:
        """A file URL: a local folder has no signing (the dev stack runs on one machine)."""
        return self._path(key).resolve().as_uri()

    async def delete(self, key: str) -> None:
        """Remove the file, if it is there."""
        self._path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Config:
    """An S3-compatible endpoint and bucket (Supabase Storage: its /storage/v1/s3 URL)."""

    endpoint_url: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str


class S3Store:
    """Objects in an S3-compatible bucket, through boto3."""

    def __init__(self, config: S3Config, rules: BucketRules = ASSETS_BUCKET_RULES) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = config.bucket
        self.rules = rules
        self.description = f"bucket {config.bucket} at {config.endpoint_url}"
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},  # Supabase: <endpoint>/<bucket>/<key>
                # Temporal's retry policy is the one retry mechanism.
                retries={"total_max_attempts": 1, "mode": "standard"},
                # Checksums only where S3 requires them: S3-compatible stores (Supabase's
                # among them) do not all accept the newer default trailing checksums.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=10,
                read_timeout=60,
            ),
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """PutObject (an existing object under the key is replaced)."""
        self.rules.check(key, content_type, len(data))
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str) -> tuple[str, bytes]:
        """GetObject."""
        check_key(key)

        def read() -> tuple[str, bytes]:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            return str(response.get("ContentType") or ""), response["Body"].read()

        return await asyncio.to_thread(read)

    async def signed_url(self, key: str, expires_in: int = 300) -> str:
        """A presigned GET URL (SigV4 query parameters), valid ``expires_in`` seconds."""
        check_key(key)
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        )

    async def delete(self, key: str) -> None:
        """DeleteObject (S3 answers success for a key that is not there)."""
        check_key(key)
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (operators' checks and tests)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
