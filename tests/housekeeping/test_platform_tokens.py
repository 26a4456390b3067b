"""Our side of the token endpoints: what each answer means (revoked for good, refused, try
again), and Google access tokens cached per connection until shortly before they expire."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from activities.google_tokens import GoogleAccessTokens
from activities.platform_tokens import (
    TokenEndpoints,
    TokenRefused,
    TokenRevoked,
    TokenUnavailable,
    exchange_meta_token,
    exchange_threads_token,
    mint_google_access_token,
    refresh_threads_token,
)
from devstack.emulators.google_oauth import DEV_CLIENT_ID, DEV_CLIENT_SECRET
from devstack.emulators.meta import DEV_APP_ID, DEV_APP_SECRET
from devstack.emulators.threads import DEV_APP_SECRET as THREADS_SECRET
from tests.emulators.test_token_emulators import Emulators

BASE = "http://emu"


def endpoints(**changes: str | None) -> TokenEndpoints:
    values: dict[str, str | None] = {
        "google_oauth_url": f"{BASE}/google-oauth",
        "google_client_id": DEV_CLIENT_ID,
        "google_client_secret": DEV_CLIENT_SECRET,
        "meta_graph_url": f"{BASE}/meta",
        "meta_api_version": "v26.0",
        "meta_app_id": DEV_APP_ID,
        "meta_app_secret": DEV_APP_SECRET,
        "threads_url": f"{BASE}/threads",
        "threads_app_secret": THREADS_SECRET,
    }
    return TokenEndpoints(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
async def emu() -> AsyncIterator[tuple[Emulators, httpx.AsyncClient]]:
    e = Emulators()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=e.app), base_url=BASE) as http:
        yield e, http


async def test_each_google_answer_means_what_it_says(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    grant = e.oauth.grant()
    issued = await mint_google_access_token(http, endpoints(), grant)
    assert issued.expires_in == timedelta(seconds=3599)
    assert issued.access_token not in repr(issued)  # never printed
    with pytest.raises(TokenRefused, match="invalid_client"):
        await mint_google_access_token(http, endpoints(google_client_secret="wrong"), grant)
    with pytest.raises(TokenRefused, match="GOOGLE_OAUTH_CLIENT_ID"):
        await mint_google_access_token(http, endpoints(google_client_id=None), grant)
    e.oauth.faults.fail_next(1, status=503)
    with pytest.raises(TokenUnavailable):
        await mint_google_access_token(http, endpoints(), grant)
    e.oauth.revoke(grant)
    with pytest.raises(TokenRevoked, match="invalid_grant") as revoked:
        await mint_google_access_token(http, endpoints(), grant)
    assert grant not in str(revoked.value)


async def test_each_meta_and_threads_answer_means_what_it_says(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    token = e.meta.issue_user_token("ana")
    assert (await exchange_meta_token(http, endpoints(), token)).expires_in
    with pytest.raises(TokenRefused, match="code 1"):  # the app's secret: ours to fix
        await exchange_meta_token(http, endpoints(meta_app_secret="nope"), token)
    with pytest.raises(TokenRefused, match="META_APP_ID"):
        await exchange_meta_token(http, endpoints(meta_app_id=None), token)
    e.meta.faults.fail_next(1, status=500)
    with pytest.raises(TokenUnavailable):
        await exchange_meta_token(http, endpoints(), token)
    e.meta.revoke("ana", 460)
    with pytest.raises(TokenRevoked, match="190/460"):
        await exchange_meta_token(http, endpoints(), token)

    short = e.threads.issue_token("t")
    long = await exchange_threads_token(http, endpoints(), short)
    # Too young to refresh is a refusal, never a revocation: nothing may be paused for it.
    with pytest.raises(TokenRefused):
        await refresh_threads_token(http, endpoints(), long.access_token)
    e.clock.advance(timedelta(days=1))
    assert (await refresh_threads_token(http, endpoints(), long.access_token)).expires_in
    with pytest.raises(TokenRefused, match="THREADS_APP_SECRET"):
        await exchange_threads_token(http, endpoints(threads_app_secret=None), short)
    e.clock.advance(timedelta(days=70))
    with pytest.raises(TokenRevoked, match="190/463"):
        await refresh_threads_token(http, endpoints(), long.access_token)


async def test_google_tokens_are_cached_per_connection_until_shortly_before_expiry(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    now = [datetime(2026, 12, 3, tzinfo=UTC)]
    e.clock.set(now[0])
    tokens = GoogleAccessTokens(http, endpoints(), clock=lambda: now[0])
    one, other = uuid.uuid4(), uuid.uuid4()
    grant, other_grant = e.oauth.grant(), e.oauth.grant()
    first = await tokens.access_token(one, grant)
    assert await tokens.access_token(one, grant) == first  # cached
    assert await tokens.access_token(other, other_grant) != first  # per connection
    assert e.oauth.mint_count(grant) == 1
    # A reconnected connection (new grant) never gets its old grant's token.
    regranted = e.oauth.grant()
    assert await tokens.access_token(one, regranted) != first
    # Within five minutes of its expiry a token is minted again.
    now[0] += timedelta(minutes=54)
    assert await tokens.access_token(one, grant) == first
    now[0] += timedelta(minutes=2)
    second = await tokens.access_token(one, grant)
    assert second != first and e.oauth.mint_count(grant) == 2
    # A token the platform refused is never handed out again.
    third = await tokens.access_token(one, grant, refused=second)
    assert third != second and e.oauth.mint_count(grant) == 3
    assert await tokens.access_token(one, grant, refused=second) == third  # not again
    assert first not in repr(tokens) and grant not in repr(tokens)
