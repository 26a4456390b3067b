"""Google Ads access tokens, minted from each connection's refresh token and cached.

An access token lives about an hour. Each worker process keeps the tokens it minted in
memory, keyed by the connection and a fingerprint of the refresh token (a reconnected
connection never gets the token of its old grant), until ``MARGIN`` before they expire;
concurrent syncs of one connection mint once. Tokens are never logged, stored or put in
a workflow payload: they live in this cache and in the requests that carry them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx

from activities.platform_tokens import TokenEndpoints, mint_google_access_token

MARGIN = timedelta(minutes=5)  # a token this close to its expiry is minted again
DEFAULT_LIFETIME = timedelta(hours=1)  # Google's, when an answer leaves expires_in out


@dataclass
class _Cached:
    token: str = field(repr=False)
    expires_at: datetime


class GoogleAccessTokens:
    """Mints and caches access tokens per connection (one instance per worker process)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoints: TokenEndpoints,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        margin: timedelta = MARGIN,
    ) -> None:
        self._http = http
        self._endpoints = endpoints
        self._clock = clock
        self._margin = margin
        self._cache: dict[tuple[UUID, str], _Cached] = {}
        self._locks: dict[tuple[UUID, str], asyncio.Lock] = {}
        self.minted = 0  # how many tokens this process minted (tests, metrics)

    def __repr__(self) -> str:
        return f"GoogleAccessTokens({len(self._cache)} cached)"

    async def access_token(
        self, connection_id: UUID, refresh_token: str, *, refused: str | None = None
    ) -> str:
        """A valid access token. ``refused``: a token the platform just refused (revoked or
        expired early), never returned again: concurrent callers that saw it refused get
        one new token between them."""
        key = (connection_id, hashlib.sha256(refresh_token.encode()).hexdigest()[:16])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            usable = cached is not None and cached.token != refused
            if cached and usable and cached.expires_at - self._margin > self._clock():
                return cached.token
            issued = await mint_google_access_token(self._http, self._endpoints, refresh_token)
            self.minted += 1
            lifetime = issued.expires_in or DEFAULT_LIFETIME
            self._cache[key] = _Cached(issued.access_token, self._clock() + lifetime)
            return issued.access_token

    def forget(self, connection_id: UUID) -> None:
        """Drop a connection's cached tokens (its grant was revoked)."""
        for key in [k for k in self._cache if k[0] == connection_id]:
            del self._cache[key]
