"""The project's signing keys: fetched once and cached, refetched once when a token names
a key the cache does not have (rotation), and no more often than allowed however many
unknown kids arrive; a JWKS endpoint that is down leaves the cached keys in use."""

from __future__ import annotations

import base64
import uuid

import httpx
import jwt
import pytest

from ingress.api.auth import AuthError, JwksCache, KeysUnavailable, TokenVerifier
from tests.app.supabase_keys import JWKS_PATH, new_key, supabase_project


def _verifier(url: str, http: httpx.AsyncClient, *, min_refetch: float) -> TokenVerifier:
    jwks = JwksCache(f"{url}{JWKS_PATH}", http, min_refetch=min_refetch)
    return TokenVerifier(supabase_url=url, jwks=jwks, hs256_secret=None)


async def test_keys_are_fetched_once_and_cached() -> None:
    user = uuid.uuid4()
    with supabase_project() as project:
        async with httpx.AsyncClient() as http:
            verifier = _verifier(project.url, http, min_refetch=30)
            for key in project.published * 3:
                caller = await verifier.verify(project.token(user, key=key))
                assert caller.user_id == user
    assert project.requests == 1


async def test_a_rotated_key_is_fetched_once() -> None:
    user = uuid.uuid4()
    with supabase_project() as project:
        async with httpx.AsyncClient() as http:
            verifier = _verifier(project.url, http, min_refetch=0)
            await verifier.verify(project.token(user))
            rotated = new_key("ES256")
            project.published.insert(0, rotated)  # Supabase rotated: a new current key
            assert (await verifier.verify(project.token(user, key=rotated))).user_id == user
            assert (await verifier.verify(project.token(user, key=rotated))).user_id == user
    assert project.requests == 2


async def test_unknown_kids_refetch_at_most_once_per_interval() -> None:
    user = uuid.uuid4()
    with supabase_project() as project:
        async with httpx.AsyncClient() as http:
            verifier = _verifier(project.url, http, min_refetch=3600)
            await verifier.verify(project.token(user))
            for _ in range(20):
                with pytest.raises(AuthError) as refused:
                    await verifier.verify(project.token(user, key=new_key("ES256")))
                assert refused.value.code == "token_invalid"
    assert project.requests == 1  # the first fetch; no refetch within the interval


async def test_keys_stay_in_use_while_the_endpoint_is_down() -> None:
    user = uuid.uuid4()
    with supabase_project() as project:
        async with httpx.AsyncClient() as http:
            verifier = _verifier(project.url, http, min_refetch=0)
            await verifier.verify(project.token(user))
            project.down = True
            with pytest.raises(AuthError):  # an unknown kid: refetch fails, still refused
                await verifier.verify(project.token(user, key=new_key("ES256")))
            assert (await verifier.verify(project.token(user))).user_id == user


async def test_no_keys_at_all_is_unavailable_not_a_refusal() -> None:
    with supabase_project() as project:
        project.down = True
        async with httpx.AsyncClient() as http:
            verifier = _verifier(project.url, http, min_refetch=0)
            with pytest.raises(KeysUnavailable):
                await verifier.verify(project.token(uuid.uuid4()))


async def test_a_symmetric_key_in_the_set_is_never_used() -> None:
    # A JWKS that (wrongly) publishes an HMAC key must not let anyone sign with it.
    secret = b"published-by-mistake-and-long-enough-for-hmac"
    oct_key = {
        "kty": "oct",
        "kid": "oct-1",
        "alg": "HS256",
        "k": base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }
    with supabase_project() as project:
        project.extra_jwks.append(oct_key)
        forged = jwt.encode(
            {
                "sub": str(uuid.uuid4()),
                "aud": "authenticated",
                "role": "authenticated",
                "iss": project.issuer,
                "exp": 2_000_000_000,
            },
            secret,
            algorithm="HS256",
            headers={"kid": "oct-1"},
        )
        async with httpx.AsyncClient() as http:
            verifier = _verifier(project.url, http, min_refetch=0)
            assert await verifier.jwks.key("oct-1") is None  # type: ignore[union-attr]
            with pytest.raises(AuthError):
                await verifier.verify(forged)
