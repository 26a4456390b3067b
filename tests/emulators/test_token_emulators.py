"""The token emulators refuse what the vendors refuse: Google's OAuth token endpoint, Meta's
token exchange, Threads' exchange and refresh; and the APIs refuse what they minted once
it expired or was revoked. Time moves on the shared clock, never by sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from devstack.emulators.google_ads import GoogleAdsEmulator
from devstack.emulators.google_oauth import DEV_CLIENT_ID, DEV_CLIENT_SECRET, GoogleOAuthEmulator
from devstack.emulators.meta import DEV_APP_ID, DEV_APP_SECRET, MetaEmulator
from devstack.emulators.threads import DEV_APP_SECRET as THREADS_SECRET
from devstack.emulators.threads import ThreadsEmulator
from devstack.emulators.tokens import Clock

TODAY = date(2026, 12, 3)
CUSTOMER = "1234567890"
GAQL = (
    "SELECT campaign.id, segments.date, metrics.clicks FROM campaign "
    "WHERE segments.date BETWEEN '2025-03-01' AND '2025-03-01'"
)


class Emulators:
    def __init__(self) -> None:
        self.clock = Clock()
        self.oauth = GoogleOAuthEmulator(clock=self.clock)
        self.ads = GoogleAdsEmulator(today=lambda: TODAY)
        self.ads.token_state = self.oauth.access_token_state
        self.ads.configure_customer(CUSTOMER, campaigns=1)
        self.meta = MetaEmulator(clock=self.clock, today=lambda: TODAY)
        self.meta.configure_account("111", campaigns=1)
        self.threads = ThreadsEmulator(clock=self.clock)
        self.app = Starlette(
            routes=[
                Mount("/google-oauth", app=self.oauth.app),
                Mount("/google-ads", app=self.ads.app),
                Mount("/meta", app=self.meta.app),
                Mount("/threads", app=self.threads.app),
            ]
        )


@pytest.fixture
async def emu() -> AsyncIterator[tuple[Emulators, httpx.AsyncClient]]:
    e = Emulators()
    transport = httpx.ASGITransport(app=e.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emu") as http:
        yield e, http


def _form(**fields: str) -> dict[str, str]:
    base = {
        "grant_type": "refresh_token",
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
    }
    return {k: v for k, v in (base | fields).items() if v is not None}


async def _search(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        f"/google-ads/v26/customers/{CUSTOMER}/googleAds:search",
        json={"query": GAQL},
        headers={"Authorization": f"Bearer {token}", "developer-token": "dev"},
    )


# --- Google OAuth -----------------------------------------------------------------------------


async def test_google_mints_an_hour_long_token_the_ads_api_takes_until_it_expires(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    grant = e.oauth.grant()
    answer = await http.post("/google-oauth/token", data=_form(refresh_token=grant))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["access_token"].startswith("ya29.") and "refresh_token" not in body
    assert (await _search(http, body["access_token"])).status_code == 200
    e.clock.advance(timedelta(seconds=3600))
    expired = await _search(http, body["access_token"])
    assert expired.status_code == 401 and "OAUTH_TOKEN_EXPIRED" in expired.text
    fresh = await http.post("/google-oauth/token", data=_form(refresh_token=grant))
    assert (await _search(http, fresh.json()["access_token"])).status_code == 200


async def test_a_revoked_grant_answers_invalid_grant_and_its_tokens_stop_working(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    grant = e.oauth.grant()
    token = (await http.post("/google-oauth/token", data=_form(refresh_token=grant))).json()
    revoked = await http.post("/google-oauth/revoke", data={"token": grant})
    assert revoked.status_code == 200
    again = await http.post("/google-oauth/token", data=_form(refresh_token=grant))
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    refused = await _search(http, token["access_token"])
    assert refused.status_code == 401 and "OAUTH_TOKEN_REVOKED" in refused.text


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"grant_type": None}, 400, "invalid_request"),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        ({"grant_type": "REFRESH_TOKEN"}, 400, "unsupported_grant_type"),
        ({"client_id": "someone-else.apps.googleusercontent.com"}, 401, "invalid_client"),
        ({"client_id": None}, 400, "invalid_request"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_secret": None}, 400, "invalid_request"),  # "client_secret is missing."
        ({"client_secret": ""}, 400, "invalid_request"),
        ({"refresh_token": None}, 400, "invalid_request"),
        ({"refresh_token": "1//0never-granted"}, 400, "invalid_grant"),
        ({"refresh_token": ""}, 400, "invalid_request"),
    ],
)
async def test_google_refuses_what_google_refuses(
    emu: tuple[Emulators, httpx.AsyncClient], fields: dict[str, Any], status: int, error: str
) -> None:
    e, http = emu
    form = _form(refresh_token=e.oauth.grant()) | fields
    answer = await http.post(
        "/google-oauth/token", data={k: v for k, v in form.items() if v is not None}
    )
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert e.oauth.mint_count() == 0


async def test_google_wants_a_form_and_a_grant_of_the_same_client(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    grant = e.oauth.grant()
    as_json = await http.post("/google-oauth/token", json=_form(refresh_token=grant))
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    e.oauth.clients["other.apps.googleusercontent.com"] = "other-secret"
    foreign = e.oauth.grant("other.apps.googleusercontent.com")
    answer = await http.post("/google-oauth/token", data=_form(refresh_token=foreign))
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"


# --- Meta ---------------------------------------------------------------------------------------


def _exchange(token: str, **params: str) -> dict[str, str]:
    return {
        "grant_type": "fb_exchange_token",
        "client_id": DEV_APP_ID,
        "client_secret": DEV_APP_SECRET,
        "fb_exchange_token": token,
    } | params


async def test_meta_exchanges_short_and_long_lived_tokens_for_60_days(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    short = e.meta.issue_user_token("ana")
    answer = await http.get("/meta/v26.0/oauth/access_token", params=_exchange(short))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 5183944)
    again = await http.get("/meta/v26.0/oauth/access_token", params=_exchange(body["access_token"]))
    assert again.status_code == 200 and again.json()["access_token"] != body["access_token"]
    # The short-lived one expires in hours; the long-lived one keeps reading insights.
    e.clock.advance(timedelta(hours=3))
    insights = "/meta/v26.0/act_111/insights"
    time_range = '{"since":"2025-03-01","until":"2025-03-01"}'
    old = await http.get(insights, params={"access_token": short, "time_range": time_range})
    assert old.status_code == 400 and old.json()["error"]["error_subcode"] == 463
    new = await http.get(
        insights, params={"access_token": body["access_token"], "time_range": time_range}
    )
    assert new.status_code == 200


@pytest.mark.parametrize(
    ("params", "code", "subcode"),
    [
        ({"grant_type": "client_credentials"}, 100, None),
        ({"client_id": "999"}, 101, None),
        ({"client_secret": "not-it"}, 1, None),
        ({"client_secret": ""}, 1, None),
        ({"client_id": ""}, 101, None),  # "Missing client_id parameter."
        ({"grant_type": ""}, 100, None),
        ({"fb_exchange_token": ""}, 100, None),
        ({"fb_exchange_token": "EAAB-never-issued"}, 190, None),
    ],
)
async def test_meta_refuses_what_meta_refuses(
    emu: tuple[Emulators, httpx.AsyncClient], params: dict[str, str], code: int, subcode: Any
) -> None:
    e, http = emu
    answer = await http.get(
        "/meta/v26.0/oauth/access_token",
        params=_exchange(e.meta.issue_user_token(), **params),
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error.get("error_subcode")) == (code, subcode)
    assert "access_token" not in answer.json()


@pytest.mark.parametrize("subcode", [458, 460])
async def test_meta_refuses_expired_and_revoked_tokens_with_190(
    emu: tuple[Emulators, httpx.AsyncClient], subcode: int
) -> None:
    e, http = emu
    long = e.meta.issue_user_token("bo", long_lived=True)
    e.clock.advance(timedelta(days=61))
    expired = await http.get("/meta/v26.0/oauth/access_token", params=_exchange(long))
    assert (expired.json()["error"]["code"], expired.json()["error"]["error_subcode"]) == (190, 463)
    e.clock.advance(timedelta(days=-61))
    e.meta.revoke("bo", subcode)
    revoked = await http.get("/meta/v26.0/oauth/access_token", params=_exchange(long))
    error = revoked.json()["error"]
    assert (error["code"], error["error_subcode"]) == (190, subcode)


async def test_meta_exchange_needs_a_served_version(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    answer = await http.get(
        "/meta/v21.0/oauth/access_token", params=_exchange(e.meta.issue_user_token())
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 2635


# --- Threads ------------------------------------------------------------------------------------


async def test_threads_exchanges_then_refreshes_a_day_old_token(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    short = e.threads.issue_token("t1")
    exchanged = await http.get(
        "/threads/access_token",
        params={
            "grant_type": "th_exchange_token",
            "client_secret": THREADS_SECRET,
            "access_token": short,
        },
    )
    assert exchanged.status_code == 200 and exchanged.json()["expires_in"] == 5183944
    long = exchanged.json()["access_token"]
    refresh = {"grant_type": "th_refresh_token", "access_token": long}
    too_young = await http.get("/threads/refresh_access_token", params=refresh)
    assert too_young.status_code == 400 and too_young.json()["error"]["code"] == 100
    e.clock.advance(timedelta(hours=24))
    refreshed = await http.get("/threads/refresh_access_token", params=refresh)
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != long
    e.clock.advance(timedelta(days=61))
    expired = await http.get("/threads/refresh_access_token", params=refresh)
    assert (expired.json()["error"]["code"], expired.json()["error"]["error_subcode"]) == (
        190,
        463,
    )


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("access_token", {"grant_type": "th_refresh_token"}, 100),
        ("access_token", {"client_secret": "wrong"}, 1),
        ("access_token", {"client_secret": ""}, 1),
        ("access_token", {"grant_type": "th_refresh_token"}, 100),
        ("refresh_access_token", {"grant_type": ""}, 100),
        ("access_token", {"access_token": "THAA-never-issued"}, 190),
        ("access_token", {"access_token": "LONG"}, 100),  # only short-lived ones exchange
        ("refresh_access_token", {"grant_type": "ig_refresh_token"}, 100),
        ("refresh_access_token", {"access_token": "SHORT"}, 100),  # only long-lived refresh
        ("refresh_access_token", {"access_token": ""}, 190),
    ],
)
async def test_threads_refuses_what_threads_refuses(
    emu: tuple[Emulators, httpx.AsyncClient], path: str, params: dict[str, str], code: int
) -> None:
    e, http = emu
    short, long = e.threads.issue_token("t2"), e.threads.issue_token("t2", long_lived=True)
    e.clock.advance(timedelta(days=2))  # old enough to refresh
    short = e.threads.issue_token("t2")  # and a short one still valid
    grant = "th_exchange_token" if path == "access_token" else "th_refresh_token"
    base = {"grant_type": grant, "client_secret": THREADS_SECRET, "access_token": short}
    if path == "refresh_access_token":
        base["access_token"] = long
    query = base | params
    query["access_token"] = {"LONG": long, "SHORT": short}.get(
        query["access_token"], query["access_token"]
    )
    answer = await http.get(f"/threads/{path}", params=query)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code
    assert "access_token" not in answer.json()


async def test_a_revoked_threads_token_cannot_be_refreshed(
    emu: tuple[Emulators, httpx.AsyncClient],
) -> None:
    e, http = emu
    long = e.threads.issue_token("t3", long_lived=True)
    e.clock.advance(timedelta(days=3))
    e.threads.revoke("t3")
    answer = await http.get(
        "/threads/refresh_access_token",
        params={"grant_type": "th_refresh_token", "access_token": long},
    )
    assert answer.json()["error"]["code"] == 190
