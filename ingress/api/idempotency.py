"""Idempotency keys: a POST repeated with its ``Idempotency-Key`` returns the first answer.

The key is the caller's (keys of different users never meet). The first request with a
key records a hash of the request (method, path, body); a later one with the same key and
hash gets the first answer back, with ``Idempotent-Replayed: true``; the same key with
another request is refused (``idempotency_key_reused``). What a request does is itself
idempotent (rows it creates have ids derived from the key, a decision is a Temporal
update whose id is derived from the key), so a request whose first attempt died before
its answer was stored simply runs again and finds what it did. Only a success is kept:
a refused request (404, 409, ...) forgets its key, so it changed nothing. Keys are kept
24 hours.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from db import app_api
from db.pool import Pool
from ingress.api.errors import ApiError

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
_NAMESPACE = uuid.UUID("6f9d0a8e-2b1c-4e7a-9c3d-5a8b7e6f4d21")


@dataclass(frozen=True)
class Answer:
    """A stored answer to replay."""

    status: int
    body: Any


def checked_key(raw: str | None) -> str:
    """The request's key, or the error of a missing or malformed one."""
    if raw is None:
        raise ApiError(400, "idempotency_key_required", f"send an {HEADER} header with every POST")
    if not _KEY.fullmatch(raw):
        raise ApiError(
            400, "idempotency_key_invalid", f"{HEADER} must be 1-255 printable ASCII characters"
        )
    return raw


def request_hash(method: str, path: str, body: Any) -> str:
    """What identifies a request: method, path and the body as canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def derived_id(user_id: UUID, key: str, what: str) -> UUID:
    """The id of what the request with this key creates (the same on every replay)."""
    return uuid.uuid5(_NAMESPACE, f"{user_id}:{key}:{what}")


async def claim(pool: Pool, user_id: UUID, key: str, digest: str) -> Answer | None:
    """Record the key; the stored answer if it was answered before (None: run it)."""
    async with pool.connection() as conn:
        for _ in range(2):
            if await app_api.claim_idempotency_key(conn, user_id, key, digest):
                return None
            known = await app_api.get_idempotency_key(conn, user_id, key)
            if known is None:
                continue  # forgotten between the two statements
            if known.expired:
                await app_api.forget_idempotency_key(conn, user_id, key)
                continue
            if known.request_hash != digest:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    f"this {HEADER} was used with another request; use a new key",
                )
            if known.response is None or known.status_code is None:
                return None  # its first attempt is running, or died: run it again
            return Answer(known.status_code, known.response)
    return None


async def store(pool: Pool, user_id: UUID, key: str, answer: Answer) -> None:
    """Keep the first answer to the key."""
    async with pool.connection() as conn:
        await app_api.store_idempotency_response(conn, user_id, key, answer.status, answer.body)


async def release(pool: Pool, user_id: UUID, key: str) -> None:
    """Forget an unanswered key (its request was refused or failed)."""
    async with pool.connection() as conn:
        await app_api.release_idempotency_key(conn, user_id, key)
