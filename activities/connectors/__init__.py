"""Ad-platform connectors: one small interface, one module per platform.

A connector fetches one page of campaign x day insights at a time and returns it as
normalized metric values plus the cursor of the next page. It raises the typed errors
below and never retries on its own: the sync activity decides (wait out a throttle,
retry a failed page, give up on an expired token). Tokens travel in headers only, so
no URL, cursor or error message carries one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx

from db.metrics import MetricValue


@dataclass(frozen=True)
class AdPlatformConfig:
    """Where the platforms' APIs are and which versions, the app-wide Google developer token,
    the Meta action types that count as conversions, the lookback."""

    meta_graph_url: str
    meta_api_version: str
    meta_conversion_action_types: frozenset[str]
    google_ads_url: str
    google_ads_api_version: str
    google_ads_developer_token: str | None
    lookback: timedelta
    # Pages are written together until they hold this many values (activities/metric_sync.py).
    write_values: int


@dataclass(frozen=True)
class Page:
    """One page of normalized values and the cursor of the next page (None: last page)."""

    values: list[MetricValue]
    rows: int  # API rows (campaign x day) on the page
    next_cursor: str | None


class ConnectorError(Exception):
    """The platform refused the request for a reason a retry cannot fix."""


class ThrottledError(ConnectorError):
    """The platform asks us to wait ``retry_after`` seconds before the next call."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthExpiredError(ConnectorError):
    """The access token expired or was revoked: the account must be reconnected."""


class PageFailedError(ConnectorError):
    """This page failed for a transient reason (5xx, network); it may succeed again."""


class Connector(Protocol):
    """Fetches one account's campaign x day metrics, a page at a time."""

    platform: str
    api_version: str

    async def fetch_page(self, since: date, until: date, cursor: str | None) -> Page:
        """The page at ``cursor`` (None: the first) of the window ``since``..``until``."""
        ...


async def answer_of(
    platform: str,
    sending: Awaitable[httpx.Response],
    refusal: Callable[[httpx.Response, dict[str, Any]], ConnectorError],
) -> dict[str, Any]:
    """The JSON object the platform answered ``sending`` with. No answer fails the page
    (retryable); an answer other than 200 raises what ``refusal`` makes of it."""
    try:
        response = await sending
    except httpx.TransportError as exc:
        raise PageFailedError(f"{platform} unreachable: {type(exc).__name__}") from None
    body = json_body(response)
    if response.status_code != 200:
        raise refusal(response, body)
    return body


def json_body(response: httpx.Response) -> dict[str, object]:
    """The response's JSON object, or an empty one if it has none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def decimal_value(value: object, platform: str) -> Decimal:
    """A metric value as a Decimal; a non-numeric one fails the page."""
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise PageFailedError(f"{platform} returned a non-numeric value {value!r}") from None


def campaign_day_values(
    entity_id: str, day: date, values: dict[str, Decimal], detail: dict[str, Any]
) -> list[MetricValue]:
    """One campaign's metrics of one day as rows to upsert."""
    return [
        MetricValue(entity_id=entity_id, metric_type=k, date=day, value=v, source_detail=detail)
        for k, v in values.items()
    ]
