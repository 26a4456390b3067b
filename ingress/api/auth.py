"""The caller of the HTTP API: a Supabase user, proven by the JWT Supabase Auth signed.

Supabase signs a session's access token with the project's asymmetric key (ES256 or
RS256, ``kid`` in the header; public keys at ``<SUPABASE_URL>/auth/v1/.well-known/
jwks.json``) or, on projects still on the legacy system, with the shared HS256 secret
(``SUPABASE_JWT_SECRET``). A token is accepted only if its signature verifies with the
key its header names, its algorithm is one of those, it is not expired, its issuer is
``<SUPABASE_URL>/auth/v1``, its audience ``authenticated``, its role ``authenticated``
and its subject a user id. The anon key (role ``anon``, no subject) is refused.

The key set is cached; a token naming a key the cache does not have (Supabase rotated
its keys) makes one refetch, at most once per ``min_refetch`` seconds, so a stream of
tokens with made-up key ids cannot make us hammer the endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from workers.logging import get_logger

log = get_logger("ingress.api.auth")
AUDIENCE = "authenticated"
ASYMMETRIC = ("ES256", "RS256")
LEEWAY = 30  # seconds of clock skew tolerated on exp / nbf / iat


class AuthError(Exception):
    """The request does not prove a signed-in user; ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class KeysUnavailable(Exception):
    """The project's signing keys cannot be read (and none are cached)."""


@dataclass(frozen=True)
class Caller:
    """Who called: the user id (``auth.uid()``), and the token's claims."""

    user_id: UUID
    claims: dict[str, Any]


class JwksCache:
    """The project's public signing keys, fetched when needed and kept for ``lifetime``."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        lifetime: float = 600.0,
        min_refetch: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.http = url, http
        self.lifetime, self.min_refetch, self.clock = lifetime, min_refetch, clock
        self.fetches = 0
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> PyJWK | None:
        """The key with this id; None if the project has none by that id."""
        now = self.clock()
        stale = self._keys is None or now - self._fetched_at > self.lifetime
        unknown = self._keys is not None and kid not in self._keys  # rotated since?
        if (stale or unknown) and now - self._fetched_at >= self.min_refetch:
            await self._refresh()
        if self._keys is None:
            raise KeysUnavailable("the signing keys could not be read; retry shortly")
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if self.clock() - self._fetched_at < self.min_refetch:
                return  # another request refreshed them while this one waited
            self.fetches += 1
            try:
                response = await self.http.get(self.url, timeout=10.0)
                response.raise_for_status()
                keys = PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                self._fetched_at = self.clock()  # a failed fetch counts too: no hammering
                log.warning("signing keys could not be read", url=self.url, error=str(exc))
                return  # the cached keys (if any) stay in use
            self._keys = {
                k.key_id: k
                for k in keys
                if k.key_id and k.algorithm_name in ASYMMETRIC and k.public_key_use in (None, "sig")
            }
            self._fetched_at = self.clock()


class TokenVerifier:
    """Turns a bearer token into a ``Caller``, or refuses it (``AuthError``)."""

    def __init__(
        self, *, supabase_url: str, jwks: JwksCache | None, hs256_secret: str | None
    ) -> None:
        self.issuer = f"{supabase_url.rstrip('/')}/auth/v1"
        self.jwks, self.secret = jwks, hs256_secret

    async def verify(self, token: str) -> Caller:
        """The caller the token proves."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("token_invalid", "the bearer token is not a JWT") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self.secret:
            key = self.secret
        elif alg in ASYMMETRIC and self.jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise AuthError("token_invalid", "the token names no signing key (kid)")
            jwk = await self.jwks.key(kid)
            if jwk is None or jwk.algorithm_name != alg:
                raise AuthError("token_invalid", "the token is not signed by this project's keys")
            key = jwk.key
        else:
            raise AuthError("token_invalid", f"tokens signed with {alg!r} are not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token_expired", "the token has expired: sign in again") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token_invalid", "the token is not for signed-in users") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token_invalid", "the token is from another project") from None
        except jwt.PyJWTError:
            raise AuthError(
                "token_invalid", "the token's signature or claims are invalid"
            ) from None
        if claims.get("role") != AUDIENCE:
            raise AuthError("token_invalid", "the token is not a signed-in user's")
        try:
            user_id = UUID(str(claims["sub"]))
        except ValueError:
            raise AuthError("token_invalid", "the token's subject is not a user id") from None
        return Caller(user_id=user_id, claims=claims)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        raise AuthError("token_missing", "sign in: send Authorization: Bearer <access token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("token_missing", "the Authorization header must be 'Bearer <token>'")
    return token.strip()


def mint_token(
    secret: str,
    *,
    supabase_url: str,
    user_id: UUID,
    email: str | None = None,
    ttl: int = 3600,
    now: float | None = None,
) -> str:
    """An access token as Supabase's legacy (HS256) system signs it: for the dev stack's
    demo user and for tests. Production tokens come from Supabase Auth."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": f"{supabase_url.rstrip('/')}/auth/v1",
        "sub": str(user_id),
        "aud": AUDIENCE,
        "role": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl,
    }
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")
