"""A Supabase project's signing keys for tests: an ES256 and an RS256 key published at a
local JWKS endpoint, and tokens signed as Supabase Auth signs them."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.runner import serve_in_thread

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


@dataclass
class SigningKey:
    """A private key and the public JWK the project publishes for it."""

    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg == "ES256" else RSAAlgorithm
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str) -> SigningKey:
    """A fresh ES256 (P-256) or RS256 (2048-bit) key."""
    private: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if alg == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    return SigningKey(kid=f"test-{alg.lower()}-{uuid.uuid4().hex[:8]}", alg=alg, private=private)


@dataclass
class Project:
    """The keys a Supabase project signs with, served at ``url + JWKS_PATH``."""

    url: str = ""
    published: list[SigningKey] = field(default_factory=list)
    legacy_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)  # served as they are
    requests: int = 0
    down: bool = False

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    def token(
        self,
        user_id: uuid.UUID | str,
        *,
        key: SigningKey | None = None,
        kid: str | None = None,
        alg: str | None = None,
        **claims: Any,
    ) -> str:
        """A user's access token, signed with ``key`` (default: the first published)."""
        key = key or self.published[0]
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": str(user_id),
            "aud": "authenticated",
            "role": "authenticated",
            "iat": now,
            "exp": now + 3600,
            "session_id": str(uuid.uuid4()),
        } | claims
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": kid or key.kid}
        return jwt.encode(body, key.private, algorithm=alg or key.alg, headers=headers)

    def legacy_token(self, user_id: uuid.UUID | str, **claims: Any) -> str:
        """A token of the legacy system: HS256 with the project's shared secret."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": str(user_id),
            "aud": "authenticated",
            "role": "authenticated",
            "iat": now,
            "exp": now + 3600,
        } | claims
        return jwt.encode(body, self.legacy_secret, algorithm="HS256")

    def app(self) -> Starlette:
        async def jwks(_: Request) -> Response:
            self.requests += 1
            if self.down:
                return JSONResponse({"message": "unavailable"}, 503)
            return JSONResponse({"keys": [k.jwk() for k in self.published] + self.extra_jwks})

        return Starlette(routes=[Route(JWKS_PATH, jwks, methods=["GET"])])


@contextmanager
def supabase_project() -> Iterator[Project]:
    """A project with an ES256 and an RS256 key, its JWKS served on loopback."""
    project = Project(published=[new_key("ES256"), new_key("RS256")])
    server = serve_in_thread(project.app())
    project.url = server.url
    try:
        yield project
    finally:
        server.stop()
