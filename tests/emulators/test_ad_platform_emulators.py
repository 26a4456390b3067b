"""The Meta Insights and Google Ads reporting emulators, called over HTTP as production does."""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from devstack.emulators.google_ads import GoogleAdsEmulator
from devstack.emulators.meta import MetaEmulator
from devstack.emulators.runner import serve_in_thread

ACCOUNT = "1234567"
CUSTOMER = "1234567890"
MANAGER = "9998887777"
TODAY = date(2026, 12, 3)  # the versions each vendor serves depend on the date
SINCE, UNTIL = "2025-03-01", "2025-03-07"
GAQL = (
    "SELECT campaign.id, campaign.name, segments.date, metrics.impressions, metrics.clicks, "
    "metrics.cost_micros, metrics.conversions FROM campaign "
    f"WHERE segments.date BETWEEN '{SINCE}' AND '{UNTIL}'"
)
GOOGLE_HEADERS = {
    "Authorization": "Bearer ya29.good",
    "developer-token": "dev-token",
    "login-customer-id": MANAGER,
}
METRICS = "campaign_id,campaign_name,impressions,clicks,spend,actions,conversions"


@pytest.fixture(scope="module")
def meta_served() -> Iterator[tuple[MetaEmulator, str]]:
    emulator = MetaEmulator(today=lambda: TODAY)
    server = serve_in_thread(Starlette(routes=[Mount("/meta", app=emulator.app)]))
    yield emulator, f"{server.url}/meta"
    server.stop()


@pytest.fixture(scope="module")
def google_served() -> Iterator[tuple[GoogleAdsEmulator, str]]:
    emulator = GoogleAdsEmulator(developer_token="dev-token", page_size=4, today=lambda: TODAY)
    server = serve_in_thread(emulator.app)
    yield emulator, server.url
    server.stop()


@pytest.fixture
def meta(meta_served: tuple[MetaEmulator, str]) -> MetaEmulator:
    meta_served[0].reset()
    meta_served[0].configure_account(ACCOUNT, campaigns=3)
    return meta_served[0]


@pytest.fixture
def google(google_served: tuple[GoogleAdsEmulator, str]) -> GoogleAdsEmulator:
    google_served[0].reset()
    google_served[0].configure_customer(CUSTOMER, campaigns=3, manager_id=MANAGER)
    return google_served[0]


def insights_url(base: str, account: str = ACCOUNT, version: str = "v26.0") -> str:
    return f"{base}/{version}/act_{account}/insights"


def insights_params(token: str = "EAAB-good", **extra: str) -> dict[str, str]:
    window = json.dumps({"since": SINCE, "until": UNTIL})
    params = {"access_token": token, "fields": METRICS, "time_range": window}
    return params | {"time_increment": "1", "level": "campaign", "limit": "5"} | extra


def all_meta_pages(base: str) -> list[dict[str, Any]]:
    response = httpx.get(insights_url(base), params=insights_params())
    rows = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["data"])
        if "next" not in page["paging"]:
            return rows
        response = httpx.get(page["paging"]["next"])


def unix_day(day: str) -> int:
    return calendar.timegm(date.fromisoformat(day).timetuple())


def search_url(base: str, customer: str = CUSTOMER, version: str = "v26") -> str:
    return f"{base}/{version}/customers/{customer}/googleAds:search"


def all_google_pages(base: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": GAQL}
    rows = []
    while True:
        response = httpx.post(search_url(base), json=body, headers=GOOGLE_HEADERS)
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["results"])
        if "nextPageToken" not in page:
            return rows
        body["pageToken"] = page["nextPageToken"]


# -- Meta ------------------------------------------------------------------------------


def test_meta_paging_returns_every_campaign_day_exactly_once(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    rows = all_meta_pages(meta_served[1])

    keys = [(row["date_start"], row["campaign_id"]) for row in rows]
    assert len(keys) == 21 == len(set(keys))
    expected = meta.expected_rows(ACCOUNT, SINCE, UNTIL)
    served = {*METRICS.split(","), "date_start", "date_stop"}
    assert rows == [{k: v for k, v in row.items() if k in served} for row in expected]
    assert all(row["date_start"] == row["date_stop"] for row in rows)
    assert meta.request_count(ACCOUNT) == 5  # 21 rows at limit=5


def test_meta_values_are_deterministic_until_late_data_bumps_them(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    twin = MetaEmulator(today=lambda: TODAY)
    twin.configure_account(ACCOUNT, campaigns=3)
    before = all_meta_pages(meta_served[1])
    assert before == all_meta_pages(meta_served[1])
    assert twin.expected_rows(ACCOUNT, SINCE, UNTIL) == meta.expected_rows(ACCOUNT, SINCE, UNTIL)

    meta.bump_values(ACCOUNT, dates=[UNTIL])
    after = all_meta_pages(meta_served[1])

    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert {b["date_start"] for b, _ in changed} == {UNTIL}
    assert len(changed) == 3
    assert all(int(a["impressions"]) > int(b["impressions"]) for b, a in changed)


def test_meta_daily_rows_add_up_to_the_range_total(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    params = insights_params(level="account", fields="impressions,clicks")
    del params["time_increment"]
    [total] = httpx.get(insights_url(meta_served[1]), params=params).json()["data"]

    daily = meta.expected_rows(ACCOUNT, SINCE, UNTIL, level="ad")
    assert int(total["impressions"]) == sum(int(row["impressions"]) for row in daily)
    assert (total["date_start"], total["date_stop"]) == (SINCE, UNTIL)


def test_meta_throttle_announces_the_wait_in_usage_headers_never_retry_after(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    meta.throttle_next(1, retry_after_s=120)

    throttled = httpx.get(insights_url(meta_served[1]), params=insights_params())
    retried = httpx.get(insights_url(meta_served[1]), params=insights_params())

    assert throttled.status_code == 400
    error = throttled.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (
        80000,
        2446079,
        "OAuthException",
    )
    assert "retry-after" not in throttled.headers  # Graph never sends one
    usage = json.loads(throttled.headers["x-business-use-case-usage"])
    assert usage[ACCOUNT][0]["estimated_time_to_regain_access"] == 2
    load = json.loads(throttled.headers["x-fb-ads-insights-throttle"])
    assert load["acc_id_util_pct"] == 100
    assert set(load) >= {"app_id_util_pct", "acc_id_util_pct"}
    assert retried.status_code == 200
    assert "retry-after" not in retried.headers
    calm = json.loads(retried.headers["x-business-use-case-usage"])
    assert calm[ACCOUNT][0]["estimated_time_to_regain_access"] == 0


def test_meta_expired_token_answers_oauth_exception_190(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    meta.expire_token("EAAB-old")

    response = httpx.get(insights_url(meta_served[1]), params=insights_params("EAAB-old"))

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["error_subcode"]) == ("OAuthException", 190, 463)
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    missing = httpx.get(insights_url(meta_served[1]), params=insights_params(""))
    assert missing.json()["error"]["code"] == 104


def test_meta_failed_page_answers_500_once_then_serves_it(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    meta.fail_page(ACCOUNT, 1)
    first = httpx.get(insights_url(meta_served[1]), params=insights_params()).json()

    failed = httpx.get(first["paging"]["next"])
    retried = httpx.get(first["paging"]["next"])

    assert failed.status_code == 500
    assert failed.json()["error"]["is_transient"] is True
    assert retried.status_code == 200
    assert [r["page_index"] for r in meta.requests()] == [0, 1, 1]


def test_meta_unknown_account_and_instagram_insights(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    unknown = httpx.get(insights_url(meta_served[1], "999"), params=insights_params())
    assert unknown.json()["error"]["code"] == 100

    meta.configure_instagram_user("17841400000000000")
    params = {"access_token": "EAAB-good", "metric": "reach,views", "period": "day"}
    params |= {"since": str(unix_day(SINCE)), "until": str(unix_day(UNTIL))}
    response = httpx.get(f"{meta_served[1]}/v26.0/17841400000000000/insights", params=params)

    assert response.status_code == 200
    reach, views = response.json()["data"]
    assert (reach["name"], views["name"]) == ("reach", "views")
    assert len(reach["values"]) == 7


# -- Google Ads ------------------------------------------------------------------------


def test_google_paging_returns_every_campaign_day_exactly_once(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    rows = all_google_pages(google_served[1])

    keys = [(row["segments"]["date"], row["campaign"]["id"]) for row in rows]
    assert len(keys) == 21 == len(set(keys))
    expected = google.expected_rows(CUSTOMER, SINCE, UNTIL)
    for row in expected:
        del row["campaign"]["status"]  # not selected
    assert rows == expected
    assert rows[0]["campaign"]["resourceName"].startswith(f"customers/{CUSTOMER}/campaigns/")
    assert isinstance(rows[0]["metrics"]["costMicros"], str)
    assert google.request_count(CUSTOMER) == 6  # 21 rows, 4 per page
    assert google.requests()[0]["login_customer_id"] == MANAGER


def test_google_values_are_deterministic_until_late_data_bumps_them(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    before = all_google_pages(google_served[1])
    assert before == all_google_pages(google_served[1])

    google.bump_values(CUSTOMER)
    after = all_google_pages(google_served[1])

    assert all(
        int(a["metrics"]["impressions"]) > int(b["metrics"]["impressions"])
        for b, a in zip(before, after, strict=True)
    )


def test_google_search_stream_returns_all_rows_in_one_batch(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    url = search_url(google_served[1]).replace(":search", ":searchStream")
    [batch] = httpx.post(url, json={"query": GAQL}, headers=GOOGLE_HEADERS).json()
    assert len(batch["results"]) == 21
    assert "segments.date" in batch["fieldMask"]


def test_google_throttle_answers_resource_exhausted_with_retry_delay(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    google.throttle_next(1, retry_after_s=30)

    throttled = httpx.post(
        search_url(google_served[1]), json={"query": GAQL}, headers=GOOGLE_HEADERS
    )

    assert throttled.status_code == 429
    assert "retry-after" not in throttled.headers  # the delay is in the body only
    error = throttled.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    [failure] = error["details"][0]["errors"]
    assert failure["errorCode"] == {"quotaError": "RESOURCE_EXHAUSTED"}
    assert failure["details"]["quotaErrorDetails"]["retryDelay"] == "30s"
    assert len(all_google_pages(google_served[1])) == 21


def test_google_expired_token_is_unauthenticated_and_a_missing_developer_token_invalid(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    google.expire_token("ya29.old")
    expired_headers = GOOGLE_HEADERS | {"Authorization": "Bearer ya29.old"}
    no_dev_token = {k: v for k, v in GOOGLE_HEADERS.items() if k != "developer-token"}

    expired = httpx.post(
        search_url(google_served[1]), json={"query": GAQL}, headers=expired_headers
    )
    anonymous = httpx.post(search_url(google_served[1]), json={"query": GAQL}, headers=no_dev_token)

    assert expired.status_code == 401
    error = expired.json()["error"]
    assert error["status"] == "UNAUTHENTICATED"
    assert error["details"][0]["errors"][0]["errorCode"] == {
        "authenticationError": "OAUTH_TOKEN_EXPIRED"
    }
    assert anonymous.status_code == 400
    assert anonymous.json()["error"]["details"][0]["errors"][0]["errorCode"] == {
        "requestError": "DEVELOPER_TOKEN_PARAMETER_MISSING"
    }


def test_google_failed_page_answers_500_once_then_serves_it(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    google.fail_page(CUSTOMER, 2)
    url = search_url(google_served[1])
    first = httpx.post(url, json={"query": GAQL}, headers=GOOGLE_HEADERS).json()
    second = httpx.post(
        url, json={"query": GAQL, "pageToken": first["nextPageToken"]}, headers=GOOGLE_HEADERS
    ).json()
    third = {"query": GAQL, "pageToken": second["nextPageToken"]}

    failed = httpx.post(url, json=third, headers=GOOGLE_HEADERS)
    retried = httpx.post(url, json=third, headers=GOOGLE_HEADERS)

    assert failed.status_code == 500
    assert failed.json()["error"]["status"] == "INTERNAL"
    assert retried.status_code == 200
    assert [r["page_index"] for r in google.requests()] == [0, 1, 2, 2]


def test_google_rejects_page_size_and_a_query_without_a_date_range(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str]
) -> None:
    url = search_url(google_served[1])
    sized = httpx.post(url, json={"query": GAQL, "pageSize": 100}, headers=GOOGLE_HEADERS)
    undated = httpx.post(
        url, json={"query": "SELECT campaign.id FROM campaign"}, headers=GOOGLE_HEADERS
    )

    assert sized.status_code == 400
    assert sized.json()["error"]["details"][0]["errors"][0]["errorCode"] == {
        "requestError": "PAGE_SIZE_NOT_SUPPORTED"
    }
    assert undated.status_code == 400
    assert undated.json()["error"]["status"] == "INVALID_ARGUMENT"


# -- strictness: what the vendors refuse, the emulators refuse -------------------------


@pytest.mark.parametrize(
    ("version", "status", "code"),
    [
        ("v21.0", 400, 2635),  # expired 2025-09-09
        ("v24.0", 400, 2635),  # expired 2026-11-10
        ("v99.0", 400, 2500),  # never existed
        ("v26", 400, 2500),  # not a Graph version string
        ("26.0", 400, 2500),
        ("v25.0", 200, None),
        ("v26.0", 200, None),
        ("v27.0", 200, None),
    ],
)
def test_meta_serves_only_the_versions_meta_serves_today(
    meta: MetaEmulator,
    meta_served: tuple[MetaEmulator, str],
    version: str,
    status: int,
    code: int | None,
) -> None:
    response = httpx.get(insights_url(meta_served[1], version=version), params=insights_params())

    assert response.status_code == status, response.text
    if code is not None:
        error = response.json()["error"]
        assert (error["code"], error["type"]) == (code, "OAuthException")
    if code == 2635:
        assert "deprecated version of the Ads API" in error["message"]
        assert error["message"].endswith("latest version: v27.0.")


def test_meta_a_version_expires_on_its_date() -> None:
    day = [date(2027, 2, 22)]
    emulator = MetaEmulator(today=lambda: day[0])
    assert "v25.0" in emulator.served_versions()
    day[0] = date(2027, 2, 23)
    assert "v25.0" not in emulator.served_versions()
    assert emulator.served_versions() == ["v26.0", "v27.0"]


def test_meta_asks_for_less_data_when_a_call_exceeds_the_data_limit(
    meta: MetaEmulator, meta_served: tuple[MetaEmulator, str]
) -> None:
    meta.max_rows_per_call = 9  # 3 campaigns: three days fit, seven do not
    try:
        week = httpx.get(insights_url(meta_served[1]), params=insights_params())
        window = json.dumps({"since": SINCE, "until": "2025-03-03"})
        days = httpx.get(insights_url(meta_served[1]), params=insights_params(time_range=window))
    finally:
        meta.max_rows_per_call = None

    assert week.status_code == 500
    error = week.json()["error"]
    assert error["code"] == 1
    assert "reduce the amount of data" in error["message"]
    assert "is_transient" not in error  # asking again unchanged does not help
    assert days.status_code == 200


def test_meta_conversions_overlap_across_action_types_and_are_left_out_when_none(
    meta: MetaEmulator,
) -> None:
    rows = meta.expected_rows(ACCOUNT, SINCE, UNTIL)

    with_conversions = [r for r in rows if "conversions" in r]
    assert with_conversions, "the synthetic data has conversions"
    for row in with_conversions:
        by_type = {a["action_type"]: a["value"] for a in row["conversions"]}
        # A pixel purchase is also an omni_purchase: summing every entry counts it twice.
        assert by_type["offsite_conversion.fb_pixel_purchase"] == by_type["omni_purchase"]
        assert all(a["value"] != "0" for a in row["conversions"])
        assert row["conversions"] != []
    quarter = meta.expected_rows(ACCOUNT, "2025-01-01", "2025-03-31")
    assert any("conversions" not in r for r in quarter)  # left out, not an empty list


@pytest.mark.parametrize(
    ("version", "status", "error_code"),
    [
        ("v20", 400, {"requestError": "UNSUPPORTED_VERSION"}),  # sunset 2026-06-10
        ("v22", 400, {"requestError": "UNSUPPORTED_VERSION"}),  # sunset 2026-10-07
        ("v27", 404, None),  # not released
        ("v19", 404, None),  # long gone
        ("v26.0", 404, None),  # a Graph-style version
        ("26", 404, None),
        ("v23", 200, None),
        ("v26", 200, None),
    ],
)
def test_google_serves_only_the_versions_google_serves_today(
    google: GoogleAdsEmulator,
    google_served: tuple[GoogleAdsEmulator, str],
    version: str,
    status: int,
    error_code: dict[str, str] | None,
) -> None:
    url = search_url(google_served[1], version=version)
    response = httpx.post(url, json={"query": GAQL}, headers=GOOGLE_HEADERS)

    assert response.status_code == status, response.text
    if error_code is not None:
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        [failure] = error["details"][0]["errors"]
        assert failure["errorCode"] == error_code
        assert f"Version {version} is deprecated" in failure["message"]
        assert f".{version}.errors.GoogleAdsFailure" in error["details"][0]["@type"]


@pytest.mark.parametrize(
    ("manager", "login", "status"),
    [
        (MANAGER, MANAGER, 200),
        (MANAGER, None, 403),  # reached through a manager, header missing
        (MANAGER, CUSTOMER, 403),  # its own id is not its manager's
        (MANAGER, "1112223333", 403),  # another manager
        (MANAGER, "999-888-7777", 400),  # dashes are not allowed in the header
        (MANAGER, "", 400),
        (None, None, 200),  # reached directly
        (None, CUSTOMER, 200),
        (None, MANAGER, 403),  # no such manager link
    ],
)
def test_google_requires_login_customer_id_for_a_customer_behind_a_manager(
    google: GoogleAdsEmulator,
    google_served: tuple[GoogleAdsEmulator, str],
    manager: str | None,
    login: str | None,
    status: int,
) -> None:
    google.configure_customer(CUSTOMER, campaigns=3, manager_id=manager)
    headers = {k: v for k, v in GOOGLE_HEADERS.items() if k != "login-customer-id"}
    if login is not None:
        headers["login-customer-id"] = login

    response = httpx.post(search_url(google_served[1]), json={"query": GAQL}, headers=headers)

    assert response.status_code == status, response.text
    if status == 403:
        [failure] = response.json()["error"]["details"][0]["errors"]
        assert failure["errorCode"] == {"authorizationError": "USER_PERMISSION_DENIED"}
        assert "login-customer-id" in failure["message"]


@pytest.mark.parametrize("dev_token", [None, "", "wrong-token"])
def test_google_refuses_a_request_without_the_right_developer_token(
    google: GoogleAdsEmulator, google_served: tuple[GoogleAdsEmulator, str], dev_token: str | None
) -> None:
    headers = {k: v for k, v in GOOGLE_HEADERS.items() if k != "developer-token"}
    if dev_token is not None:
        headers["developer-token"] = dev_token

    response = httpx.post(search_url(google_served[1]), json={"query": GAQL}, headers=headers)

    assert response.status_code in (400, 401)
    assert google.request_count() == 1


def test_google_any_developer_token_is_still_required_when_no_value_is_set() -> None:
    emulator = GoogleAdsEmulator(today=lambda: TODAY)
    emulator.configure_customer(CUSTOMER, manager_id=MANAGER)
    server = serve_in_thread(emulator.app)
    try:
        headers = {k: v for k, v in GOOGLE_HEADERS.items() if k != "developer-token"}
        missing = httpx.post(search_url(server.url), json={"query": GAQL}, headers=headers)
        present = httpx.post(search_url(server.url), json={"query": GAQL}, headers=GOOGLE_HEADERS)
    finally:
        server.stop()

    assert missing.status_code == 400
    assert present.status_code == 200


def test_google_leaves_zero_metrics_out_of_the_json(google: GoogleAdsEmulator) -> None:
    rows = google.expected_rows(CUSTOMER, "2025-01-01", "2025-03-31")

    assert any("conversions" not in r["metrics"] for r in rows)
    assert all(float(v) != 0 for r in rows for v in r["metrics"].values())
