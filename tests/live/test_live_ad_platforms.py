"""Meta and Google Ads, live and read-only: the configured versions are served, the
connectors read a page, and a retired version is refused the way the emulators refuse it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest

from activities.connectors import ConnectorError
from activities.connectors.google_ads import GoogleAdsConnector
from activities.connectors.meta import MetaConnector
from tests.live.conftest import keys_for, real_url
from workers.settings import Settings

pytestmark = pytest.mark.live
UNTIL = date.today() - timedelta(days=1)
SINCE = UNTIL - timedelta(days=2)
DEFAULTS = Settings.model_fields


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


def meta(http: httpx.AsyncClient, version: str) -> MetaConnector:
    keys = keys_for("meta")
    return MetaConnector(
        http,
        real_url("meta_graph_url"),
        keys["LIVE_META_AD_ACCOUNT_ID"],
        keys["LIVE_META_ACCESS_TOKEN"],
        api_version=version,
        conversion_action_types=frozenset(
            str(DEFAULTS["meta_conversion_action_types"].default).split(",")
        ),
    )


async def test_meta_default_version_reads_a_page_of_insights(http: httpx.AsyncClient) -> None:
    page = await meta(http, str(DEFAULTS["meta_graph_api_version"].default)).fetch_page(
        SINCE, UNTIL, None
    )
    assert page.rows >= 0
    assert all(
        v.metric_type in {"impressions", "clicks", "spend", "conversions"} for v in page.values
    )


async def test_meta_refuses_an_expired_version_with_2635(http: httpx.AsyncClient) -> None:
    with pytest.raises(ConnectorError, match="2635"):
        await meta(http, "v21.0").fetch_page(SINCE, UNTIL, None)


async def test_meta_sends_the_usage_headers_the_connector_reads(http: httpx.AsyncClient) -> None:
    keys = keys_for("meta")
    version = DEFAULTS["meta_graph_api_version"].default
    account = keys["LIVE_META_AD_ACCOUNT_ID"].removeprefix("act_")
    response = await http.get(
        f"{real_url('meta_graph_url')}/{version}/act_{account}/insights",
        params={"fields": "impressions", "date_preset": "yesterday"},
        headers={"Authorization": f"Bearer {keys['LIVE_META_ACCESS_TOKEN']}"},
    )
    assert response.status_code == 200, response.text
    assert "retry-after" not in response.headers
    usage = json.loads(response.headers.get("x-business-use-case-usage", "{}"))
    for entries in usage.values():
        assert all("estimated_time_to_regain_access" in e for e in entries)


def google(
    http: httpx.AsyncClient, version: str, *, developer_token: str | None = None
) -> GoogleAdsConnector:
    keys = keys_for("google_ads")
    return GoogleAdsConnector(
        http,
        real_url("google_ads_url"),
        keys["LIVE_GOOGLE_ADS_CUSTOMER_ID"],
        keys["LIVE_GOOGLE_ADS_ACCESS_TOKEN"],
        api_version=version,
        developer_token=developer_token or keys["GOOGLE_ADS_DEVELOPER_TOKEN"],
        login_customer_id=keys.get("LIVE_GOOGLE_ADS_LOGIN_CUSTOMER_ID"),
    )


async def test_google_default_version_reads_a_page(http: httpx.AsyncClient) -> None:
    page = await google(http, str(DEFAULTS["google_ads_api_version"].default)).fetch_page(
        SINCE, UNTIL, None
    )
    assert page.rows >= 0


async def test_google_refuses_a_sunset_version(http: httpx.AsyncClient) -> None:
    with pytest.raises(ConnectorError, match="GOOGLE_ADS_API_VERSION"):
        await google(http, "v20").fetch_page(SINCE, UNTIL, None)


async def test_google_still_requires_a_developer_token(http: httpx.AsyncClient) -> None:
    """Google's policy page is reported to call the token optional since 2026-09-09; the
    emulator refuses a request without one, as the API was seen to. This says which holds."""
    keys = keys_for("google_ads")
    version = DEFAULTS["google_ads_api_version"].default
    customer = keys["LIVE_GOOGLE_ADS_CUSTOMER_ID"].replace("-", "")
    headers = {"Authorization": f"Bearer {keys['LIVE_GOOGLE_ADS_ACCESS_TOKEN']}"}
    if login := keys.get("LIVE_GOOGLE_ADS_LOGIN_CUSTOMER_ID"):
        headers["login-customer-id"] = login.replace("-", "")
    response = await http.post(
        f"{real_url('google_ads_url')}/{version}/customers/{customer}/googleAds:search",
        json={"query": "SELECT customer.id FROM customer"},
        headers=headers,
    )
    assert response.status_code == 400, response.text
    assert "DEVELOPER_TOKEN_PARAMETER_MISSING" in response.text
