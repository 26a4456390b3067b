"""The Meta and Google Ads connectors against their emulators over HTTP: versions, headers,
throttling signals, error 1 and the conversions they count."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal

import httpx
import pytest

from activities.connectors import ConnectorError, PageFailedError, ThrottledError
from activities.connectors.google_ads import GoogleAdsConnector
from activities.connectors.meta import Cursor, MetaConnector, throttle_wait
from devstack.emulators.google_ads import GoogleAdsEmulator
from devstack.emulators.meta import OMNI_PURCHASE, PURCHASE, MetaEmulator
from devstack.emulators.runner import ThreadedServer, serve_in_thread

TODAY = date(2026, 12, 3)
ACCOUNT, CUSTOMER, MANAGER = "1234567", "1234567890", "9998887777"
SINCE, UNTIL = date(2025, 3, 1), date(2025, 3, 7)
PIXEL = frozenset({PURCHASE})


@pytest.fixture(scope="module")
def meta_server() -> Iterator[tuple[MetaEmulator, ThreadedServer]]:
    emulator = MetaEmulator(today=lambda: TODAY)
    server = serve_in_thread(emulator.app)
    yield emulator, server
    server.stop()


@pytest.fixture(scope="module")
def google_server() -> Iterator[tuple[GoogleAdsEmulator, ThreadedServer]]:
    emulator = GoogleAdsEmulator(developer_token="dev-token", today=lambda: TODAY)
    server = serve_in_thread(emulator.app)
    yield emulator, server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def meta(meta_server: tuple[MetaEmulator, ThreadedServer]) -> MetaEmulator:
    meta_server[0].reset()
    meta_server[0].max_rows_per_call = None
    meta_server[0].configure_account(ACCOUNT, campaigns=3)
    return meta_server[0]


def meta_connector(
    http: httpx.AsyncClient,
    server: ThreadedServer,
    version: str = "v26.0",
    types: frozenset[str] = PIXEL,
) -> MetaConnector:
    return MetaConnector(
        http,
        server.url,
        ACCOUNT,
        "EAAB-good",
        api_version=version,
        conversion_action_types=types,
    )


async def pull(connector: MetaConnector | GoogleAdsConnector) -> tuple[list[str | None], dict]:
    """Every page of the window: the cursors used, and the values by (entity, metric, day)."""
    cursors: list[str | None] = [None]
    values = {}
    while True:
        page = await connector.fetch_page(SINCE, UNTIL, cursors[-1])
        values.update({(v.entity_id, v.metric_type, v.date): v.value for v in page.values})
        if page.next_cursor is None:
            return cursors, values
        cursors.append(page.next_cursor)


def meta_expected(meta: MetaEmulator, types: frozenset[str]) -> dict:
    values = {}
    for row in meta.expected_rows(ACCOUNT, str(SINCE), str(UNTIL)):
        key = (row["campaign_id"], date.fromisoformat(row["date_start"]))
        actions = row.get("conversions", [])
        conversions = sum(
            (Decimal(a["value"]) for a in actions if a["action_type"] in types), Decimal(0)
        )
        values[(key[0], "conversions", key[1])] = conversions
        for metric in ("impressions", "clicks", "spend"):
            values[(key[0], metric, key[1])] = Decimal(row[metric])
    return values


async def test_meta_counts_only_the_configured_action_types(
    meta: MetaEmulator, meta_server: tuple[MetaEmulator, ThreadedServer], http: httpx.AsyncClient
) -> None:
    _, pixel = await pull(meta_connector(http, meta_server[1]))
    _, both = await pull(meta_connector(http, meta_server[1], types=PIXEL | {OMNI_PURCHASE}))

    assert pixel == meta_expected(meta, PIXEL)
    conversions = {k: v for k, v in pixel.items() if k[1] == "conversions"}
    assert any(v > 0 for v in conversions.values())
    assert len(conversions) == 21  # a row without conversions still counts zero
    # Counting the overlapping omni_purchase too doubles every purchase.
    assert all(both[k] == 2 * v for k, v in conversions.items())


async def test_meta_reads_the_window_day_by_day_when_asked_for_less_data(
    meta: MetaEmulator, meta_server: tuple[MetaEmulator, ThreadedServer], http: httpx.AsyncClient
) -> None:
    meta.max_rows_per_call = 3  # one day of 3 campaigns, no more

    cursors, values = await pull(meta_connector(http, meta_server[1]))

    assert values == meta_expected(meta, PIXEL)
    days = [Cursor.parse(c).day for c in cursors[1:]]
    assert days == [date(2025, 3, n) for n in range(2, 8)]
    statuses = [r["status"] for r in meta.requests()]
    assert statuses == [500, *[200] * 7]  # error 1 once, then one call a day, none repeated


async def test_meta_gives_up_a_page_when_even_one_day_is_too_much(
    meta: MetaEmulator, meta_server: tuple[MetaEmulator, ThreadedServer], http: httpx.AsyncClient
) -> None:
    meta.max_rows_per_call = 2

    with pytest.raises(PageFailedError, match="less data even for one day"):
        await pull(meta_connector(http, meta_server[1]))
    assert len(meta.requests()) == 2  # the window, then its first day: not the same again


@pytest.mark.parametrize(
    ("minutes", "wait"), [(1, 60.0), (3, 180.0), (0, 60.0)]
)  # 0: throttled but no estimate: the default
async def test_meta_throttle_waits_what_the_usage_header_says(
    meta: MetaEmulator,
    meta_server: tuple[MetaEmulator, ThreadedServer],
    http: httpx.AsyncClient,
    minutes: int,
    wait: float,
) -> None:
    meta.throttle_next(1, retry_after_s=minutes * 60)

    with pytest.raises(ThrottledError) as throttled:
        await meta_connector(http, meta_server[1]).fetch_page(SINCE, UNTIL, None)

    assert throttled.value.retry_after == wait


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({}, None),
        ({"retry-after": "5"}, None),  # Graph sends none; one that appears is not trusted
        ({"x-business-use-case-usage": "not json"}, None),
        ({"x-business-use-case-usage": json.dumps({"1": []})}, None),
        (
            {
                "x-business-use-case-usage": json.dumps(
                    {
                        "1": [{"estimated_time_to_regain_access": 2}],
                        "2": [{"estimated_time_to_regain_access": 7}],
                    }
                )
            },
            420.0,
        ),
        ({"x-business-use-case-usage": json.dumps({"1": [{"type": "ads_insights"}]})}, None),
        ({"x-fb-ads-insights-throttle": json.dumps({"acc_id_util_pct": 100})}, None),
    ],
)
def test_meta_throttle_wait_table(headers: dict[str, str], wait: float | None) -> None:
    assert throttle_wait(httpx.Headers(headers)) == wait


@pytest.mark.parametrize("version", ["v21.0", "v24.0", "v99.0"])
async def test_meta_names_the_version_setting_when_the_version_is_not_served(
    meta: MetaEmulator,
    meta_server: tuple[MetaEmulator, ThreadedServer],
    http: httpx.AsyncClient,
    version: str,
) -> None:
    with pytest.raises(ConnectorError) as refused:
        await meta_connector(http, meta_server[1], version).fetch_page(SINCE, UNTIL, None)

    assert not isinstance(refused.value, PageFailedError | ThrottledError)
    if version != "v99.0":
        assert "META_GRAPH_API_VERSION" in str(refused.value)
        assert "2635" in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "after", "day"),
    [
        (None, None, None),
        ("QVFIUm", "QVFIUm", None),
        ("day:2025-03-04:", None, date(2025, 3, 4)),
        ("day:2025-03-04:QVF:IUm", "QVF:IUm", date(2025, 3, 4)),
    ],
)
def test_meta_cursor_round_trips(raw: str | None, after: str | None, day: date | None) -> None:
    cursor = Cursor.parse(raw)
    assert (cursor.after, cursor.day) == (after, day)
    assert Cursor.parse(cursor.encode()) == cursor


def google_connector(
    http: httpx.AsyncClient,
    server: ThreadedServer,
    *,
    version: str = "v26",
    developer_token: str = "dev-token",
    login: str | None = MANAGER,
) -> GoogleAdsConnector:
    return GoogleAdsConnector(
        http,
        server.url,
        CUSTOMER,
        "ya29.good",
        api_version=version,
        developer_token=developer_token,
        login_customer_id=login,
    )


@pytest.fixture
def google(google_server: tuple[GoogleAdsEmulator, ThreadedServer]) -> GoogleAdsEmulator:
    google_server[0].reset()
    google_server[0].configure_customer(CUSTOMER, campaigns=3, manager_id=MANAGER)
    return google_server[0]


async def test_google_sends_the_developer_token_and_the_manager_on_every_request(
    google: GoogleAdsEmulator,
    google_server: tuple[GoogleAdsEmulator, ThreadedServer],
    http: httpx.AsyncClient,
) -> None:
    connector = google_connector(http, google_server[1], login="999-888-7777")
    _, values = await pull(connector)

    assert len({k[0] for k in values}) == 3
    [request] = google.requests()
    assert (request["developer_token"], request["login_customer_id"]) == ("dev-token", MANAGER)


@pytest.mark.parametrize("token", ["", None])
def test_google_connector_refuses_to_exist_without_a_developer_token(
    google_server: tuple[GoogleAdsEmulator, ThreadedServer], token: str | None
) -> None:
    with pytest.raises(ConnectorError, match="developer token"):
        GoogleAdsConnector(
            httpx.AsyncClient(),
            google_server[1].url,
            CUSTOMER,
            "ya29.good",
            api_version="v26",
            developer_token=token,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("version", "login", "wanted"),
    [
        ("v20", MANAGER, "GOOGLE_ADS_API_VERSION"),  # sunset
        ("v30", MANAGER, "GOOGLE_ADS_API_VERSION"),  # not released
        ("v26", None, "login-customer-id"),  # behind a manager, header missing
    ],
)
async def test_google_refusals_say_what_to_fix(
    google: GoogleAdsEmulator,
    google_server: tuple[GoogleAdsEmulator, ThreadedServer],
    http: httpx.AsyncClient,
    version: str,
    login: str | None,
    wanted: str,
) -> None:
    connector = google_connector(http, google_server[1], version=version, login=login)

    with pytest.raises(ConnectorError) as refused:
        await connector.fetch_page(SINCE, UNTIL, None)

    assert not isinstance(refused.value, PageFailedError | ThrottledError)
    assert wanted in str(refused.value)


async def test_google_quota_wait_comes_from_the_retry_delay_in_the_body(
    google: GoogleAdsEmulator,
    google_server: tuple[GoogleAdsEmulator, ThreadedServer],
    http: httpx.AsyncClient,
) -> None:
    google.throttle_next(1, retry_after_s=42)

    with pytest.raises(ThrottledError) as throttled:
        await google_connector(http, google_server[1]).fetch_page(SINCE, UNTIL, None)

    assert throttled.value.retry_after == 42.0
