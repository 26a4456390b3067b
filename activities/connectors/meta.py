"""Meta Marketing API: ``act_<account>/insights`` at campaign level, one row per day."""

from __future__ import annotations

import json
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
    campaign_day_values,
    decimal_value,
    json_body,
    retry_after_header,
)
from db.metrics import MetricValue

API_VERSION = "v21.0"
FIELDS = "campaign_id,campaign_name,impressions,clicks,spend,conversions"
# Rows per insights page (Meta's default is 25). Fewer, larger pages: fewer calls against the
# account's call budget, and pages big enough for the upsert to write with two connections.
PAGE_LIMIT = 500
# Graph API rate-limit codes: app, user, page, custom and ads-insights limits.
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
EXPIRED_TOKEN_CODES = frozenset({102, 190})
DEFAULT_THROTTLE_WAIT = 60.0


class MetaConnector:
    """Insights of one ad account; the token goes in the Authorization header."""

    platform = "meta"
    api_version = API_VERSION

    def __init__(self, http: httpx.AsyncClient, base_url: str, account_id: str, token: str):
        self._http = http
        self._url = f"{base_url}/{API_VERSION}/act_{account_id.removeprefix('act_')}/insights"
        self._headers = {"Authorization": f"Bearer {token}"}
        self.account_id = account_id

    async def fetch_page(self, since: date, until: date, cursor: str | None) -> Page:
        """One page of daily campaign insights; the next cursor is ``paging.cursors.after``."""
        params: dict[str, str | int] = {
            "level": "campaign",
            "time_increment": 1,
            "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
            "fields": FIELDS,
            "limit": PAGE_LIMIT,
        }
        if cursor:
            params["after"] = cursor
        try:
            response = await self._http.get(self._url, params=params, headers=self._headers)
        except httpx.TransportError as exc:
            raise PageFailedError(f"Meta unreachable: {type(exc).__name__}") from None
        body = json_body(response)
        if response.status_code != 200:
            raise _classify(response, body)
        data = body.get("data")
        if not isinstance(data, list):
            raise PageFailedError("Meta answered without a data list")
        paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
        assert isinstance(paging, dict)
        after = (paging.get("cursors") or {}).get("after")
        return Page(
            values=[v for row in data for v in self._values(row)],
            rows=len(data),
            next_cursor=str(after) if "next" in paging and after else None,
        )

    def _values(self, row: dict[str, Any]) -> list[MetricValue]:
        detail = {
            "platform": self.platform,
            "account_id": self.account_id,
            "campaign_name": row.get("campaign_name"),
            "api_version": API_VERSION,
        }
        day = date.fromisoformat(str(row["date_start"]))
        metrics: dict[str, Decimal] = {}
        for name in ("impressions", "clicks", "spend"):
            if name in row:
                metrics[name] = _number(row[name])
        if isinstance(row.get("conversions"), list):
            metrics["conversions"] = sum(
                (_number(a.get("value", 0)) for a in row["conversions"]), Decimal(0)
            )
        return campaign_day_values(str(row["campaign_id"]), day, metrics, detail)


def _classify(response: httpx.Response, body: dict[str, Any]) -> ConnectorError:
    """Map a Graph API error to the connector's typed errors."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = error.get("code")
    message = str(error.get("message", f"HTTP {response.status_code}"))[:300]
    if code in EXPIRED_TOKEN_CODES or response.status_code == 401:
        return AuthExpiredError(f"Meta rejected the access token (code {code}): {message}")
    if code in THROTTLE_CODES or response.status_code == 429:
        wait = retry_after_header(response) or _regain_access_wait(response)
        return ThrottledError(f"Meta rate limit (code {code})", wait or DEFAULT_THROTTLE_WAIT)
    if response.status_code >= 500 or error.get("is_transient") or code in (1, 2):
        return PageFailedError(f"Meta error {response.status_code} (code {code}): {message}")
    return ConnectorError(f"Meta refused the request (code {code}): {message}")


def _regain_access_wait(response: httpx.Response) -> float | None:
    """Seconds until access returns, from ``x-business-use-case-usage`` (minutes there)."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", "{}"))
        minutes = max(
            int(entry.get("estimated_time_to_regain_access", 0))
            for entries in usage.values()
            for entry in entries
        )
    except (ValueError, TypeError, AttributeError):
        return None
    return minutes * 60.0 if minutes > 0 else None


def _number(value: object) -> Decimal:
    return decimal_value(value, "Meta")
