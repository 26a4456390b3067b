"""Google Ads API: ``googleAds:search`` with a campaign x day GAQL query.

The page size is fixed by the API (setting ``pageSize`` is an error since v17), so only
``pageToken`` is sent. Every request carries the ``developer-token`` header, and
``login-customer-id`` (the manager account) when the customer is reached through a manager.
A quota error says how long to wait in its body (``quotaErrorDetails.retryDelay``); no
``Retry-After`` header is relied on.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from activities.connectors import (
    AuthExpiredError,
    ConnectorError,
    Page,
    PageFailedError,
    ThrottledError,
    answer_of,
    campaign_day_values,
    decimal_value,
)
from db.metrics import MetricValue

QUERY = (
    "SELECT campaign.id, campaign.name, segments.date, metrics.impressions, metrics.clicks, "
    "metrics.cost_micros, metrics.conversions FROM campaign "
    "WHERE segments.date BETWEEN '{since}' AND '{until}'"
)
EXPIRED = frozenset(
    {"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_REVOKED", "OAUTH_TOKEN_DISABLED"}
)
DEFAULT_THROTTLE_WAIT = 30.0
MICROS = Decimal(1_000_000)
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")


class GoogleAdsConnector:
    """Reporting of one customer; bearer token and developer token go in headers."""

    platform = "google_ads"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        customer_id: str,
        token: str,
        *,
        api_version: str,
        developer_token: str,
        login_customer_id: str | None = None,
    ):
        if not developer_token:
            raise ConnectorError("Google Ads needs a developer token on every request")
        self._http = http
        self.api_version = api_version
        self.customer_id = customer_id.replace("-", "")
        self._url = f"{base_url}/{api_version}/customers/{self.customer_id}/googleAds:search"
        self._headers = {"Authorization": f"Bearer {token}", "developer-token": developer_token}
        if login_customer_id:
            self._headers["login-customer-id"] = login_customer_id.replace("-", "")

    def use_token(self, token: str) -> None:
        """Send another access token from the next request on (one minted anew)."""
        self._headers["Authorization"] = f"Bearer {token}"

    async def fetch_page(self, since: date, until: date, cursor: str | None) -> Page:
        """One page of campaign x day rows; the next cursor is ``nextPageToken``."""
        body: dict[str, str] = {"query": QUERY.format(since=since, until=until)}
        if cursor:
            body["pageToken"] = cursor
        answer = await answer_of(
            "Google Ads",
            self._http.post(self._url, json=body, headers=self._headers),
            lambda response, answer: _classify(response, answer, self.api_version),
        )
        results = answer.get("results", [])
        if not isinstance(results, list):
            raise PageFailedError("Google Ads answered without a results list")
        token = answer.get("nextPageToken")
        return Page(
            values=[v for row in results for v in self._values(row)],
            rows=len(results),
            next_cursor=str(token) if token else None,
        )

    def _values(self, row: dict[str, Any]) -> list[MetricValue]:
        campaign, metrics = row.get("campaign", {}), row.get("metrics", {})
        detail = {
            "platform": self.platform,
            "account_id": self.customer_id,
            "campaign_name": campaign.get("name"),
            "api_version": self.api_version,
        }
        day = date.fromisoformat(str(row["segments"]["date"]))
        # The API omits zero-valued metrics from the JSON: a missing one is 0.
        values = {
            "impressions": _number(metrics.get("impressions", 0)),
            "clicks": _number(metrics.get("clicks", 0)),
            "spend": _number(metrics.get("costMicros", 0)) / MICROS,
            "conversions": _number(metrics.get("conversions", 0)),
        }
        return campaign_day_values(str(campaign["id"]), day, values, detail)


def _failure(body: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    """The first GoogleAdsFailure error's code value, message and details, if any."""
    error = body.get("error") or {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        for failure in detail.get("errors", []):
            codes = list((failure.get("errorCode") or {}).values())
            message = failure.get("message")
            return (
                (str(codes[0]) if codes else None),
                (str(message).strip() if message else None),
                failure.get("details") or {},
            )
    return None, None, {}


def _classify(response: httpx.Response, body: dict[str, Any], version: str) -> ConnectorError:
    """Map a Google Ads error to the connector's typed errors (the failure's own message,
    which says what to fix, before the status's generic one)."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    status = response.status_code
    code, specific, details = _failure(body)
    message = (specific or str(error.get("message", f"HTTP {status}")))[:300]
    if status == 401 and (code is None or code in EXPIRED):
        return AuthExpiredError(f"Google Ads rejected the access token ({code}): {message}")
    if status == 429:
        wait = _retry_delay(details)
        return ThrottledError(f"Google Ads quota exhausted ({code})", wait or DEFAULT_THROTTLE_WAIT)
    if code == "UNSUPPORTED_VERSION" or status == 404:
        return ConnectorError(
            f"Google Ads does not serve API version {version} ({status} {code}): set "
            f"GOOGLE_ADS_API_VERSION to a live version"
        )
    if status >= 500:
        return PageFailedError(f"Google Ads error {status} ({code}): {message}")
    return ConnectorError(f"Google Ads refused the request ({status} {code}): {message}")


def _retry_delay(details: dict[str, Any]) -> float | None:
    """``quotaErrorDetails.retryDelay`` ("30s") in seconds."""
    delay = (details.get("quotaErrorDetails") or {}).get("retryDelay", "")
    match = _SECONDS.match(str(delay))
    return float(match.group(1)) if match else None


def _number(value: object) -> Decimal:
    return decimal_value(value, "Google Ads")
