"""Meta Marketing API: ``act_<account>/insights`` at campaign level, one row per day.

Throttling: the Graph API sends no ``Retry-After``. How long to wait is in the
``x-business-use-case-usage`` header (``estimated_time_to_regain_access``, minutes, per
business object); ``x-fb-ads-insights-throttle`` only says how loaded the app and the
account are (percentages, no time), so it cannot tell how long to wait. Error code 1
("Please reduce the amount of data you're asking for") is not retried as it was: the
window is then read one day at a time (see ``Cursor``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
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

FIELDS = "campaign_id,campaign_name,impressions,clicks,spend,conversions"
# Rows per insights page (Meta's default is 25). Fewer, larger pages: fewer calls against the
# account's call budget, and pages big enough for the upsert to write with two connections.
PAGE_LIMIT = 500
# Graph API rate-limit codes: app (4), user (17), page (32), custom (613) and the business
# use case limits (80000-80014; 80000 is ads insights).
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
EXPIRED_TOKEN_CODES = frozenset({102, 190})
REDUCE_DATA_CODE = 1
DEPRECATED_VERSION_CODE = 2635
# When throttled with no estimate in the headers (Meta documents none other): the business
# use case window is an hour, and most estimates seen are minutes.
DEFAULT_THROTTLE_WAIT = 60.0


@dataclass(frozen=True)
class Cursor:
    """Where a pull stands. ``after`` is Meta's paging cursor. ``day`` is set once Meta asked
    for less data (error 1): the window is then read one day at a time, from ``day`` on.

    Encoded as Meta's cursor alone (whole window) or ``day:<date>:<after>`` (one day), so it
    is heartbeated and resumed like any cursor.
    """

    after: str | None = None
    day: date | None = None

    @classmethod
    def parse(cls, raw: str | None) -> Cursor:
        if raw is None:
            return cls()
        if raw.startswith("day:"):
            _, day, after = raw.split(":", 2)
            return cls(after or None, date.fromisoformat(day))
        return cls(raw)

    def encode(self) -> str | None:
        if self.day is None:
            return self.after
        return f"day:{self.day.isoformat()}:{self.after or ''}"


class ReduceDataError(ConnectorError):
    """Meta answered error 1: the request asks for too much data at once."""


class MetaConnector:
    """Insights of one ad account; the token goes in the Authorization header."""

    platform = "meta"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        account_id: str,
        token: str,
        *,
        api_version: str,
        conversion_action_types: frozenset[str],
    ):
        self._http = http
        self.api_version = api_version
        self._url = f"{base_url}/{api_version}/act_{account_id.removeprefix('act_')}/insights"
        self._headers = {"Authorization": f"Bearer {token}"}
        self.account_id = account_id
        self.conversion_action_types = conversion_action_types

    async def fetch_page(self, since: date, until: date, cursor: str | None) -> Page:
        """One page of daily campaign insights; the next cursor is ``paging.cursors.after``
        (within the current day once the window is read day by day)."""
        at = Cursor.parse(cursor)
        if at.day is None:
            try:
                return self._page(await self._get(since, until, at.after), since, until, None)
            except ReduceDataError:
                if since == until:
                    raise PageFailedError(
                        f"Meta asks for less data even for one day ({since}) of account "
                        f"{self.account_id}"
                    ) from None
                # The whole window again, one day at a time: pages already written are
                # written again unchanged (the upsert is idempotent), none is skipped.
                at = Cursor(None, since)
        assert at.day is not None
        try:
            body = await self._get(at.day, at.day, at.after)
        except ReduceDataError:
            raise PageFailedError(
                f"Meta asks for less data even for one day ({at.day}) of account {self.account_id}"
            ) from None
        return self._page(body, at.day, at.day, until)

    async def _get(self, since: date, until: date, after: str | None) -> dict[str, Any]:
        params: dict[str, str | int] = {
            "level": "campaign",
            "time_increment": 1,
            "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
            "fields": FIELDS,
            "limit": PAGE_LIMIT,
        }
        if after:
            params["after"] = after
        return await answer_of(
            "Meta",
            self._http.get(self._url, params=params, headers=self._headers),
            lambda response, body: _classify(response, body, self.api_version),
        )

    def _page(self, body: dict[str, Any], since: date, until: date, last: date | None) -> Page:
        """The rows of ``body``; ``last`` is the window's last day when reading day by day."""
        data = body.get("data")
        if not isinstance(data, list):
            raise PageFailedError("Meta answered without a data list")
        paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
        assert isinstance(paging, dict)
        after = (paging.get("cursors") or {}).get("after")
        more = "next" in paging and bool(after)
        next_cursor: Cursor | None = None
        if last is None:
            next_cursor = Cursor(str(after)) if more else None
        elif more:
            next_cursor = Cursor(str(after), since)
        elif since < last:
            next_cursor = Cursor(None, since + timedelta(days=1))
        return Page(
            values=[v for row in data for v in self._values(row)],
            rows=len(data),
            next_cursor=next_cursor.encode() if next_cursor else None,
        )

    def _values(self, row: dict[str, Any]) -> list[MetricValue]:
        detail = {
            "platform": self.platform,
            "account_id": self.account_id,
            "campaign_name": row.get("campaign_name"),
            "api_version": self.api_version,
        }
        day = date.fromisoformat(str(row["date_start"]))
        metrics: dict[str, Decimal] = {}
        for name in ("impressions", "clicks", "spend"):
            if name in row:
                metrics[name] = _number(row[name])
        metrics["conversions"] = self._conversions(row.get("conversions"))
        return campaign_day_values(str(row["campaign_id"]), day, metrics, detail)

    def _conversions(self, actions: object) -> Decimal:
        """The sum over the configured action types only. Meta reports overlapping types (a
        pixel purchase is counted again in ``omni_purchase``), and leaves the field out of a
        row that has no conversions."""
        if actions is None:
            return Decimal(0)
        if not isinstance(actions, list):
            raise PageFailedError(f"Meta returned conversions that are not a list: {actions!r}")
        return sum(
            (
                _number(a.get("value", 0))
                for a in actions
                if isinstance(a, dict) and a.get("action_type") in self.conversion_action_types
            ),
            Decimal(0),
        )


def _classify(response: httpx.Response, body: dict[str, Any], version: str) -> ConnectorError:
    """Map a Graph API error to the connector's typed errors."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = error.get("code")
    message = str(error.get("message", f"HTTP {response.status_code}"))[:300]
    if code in EXPIRED_TOKEN_CODES or response.status_code == 401:
        return AuthExpiredError(f"Meta rejected the access token (code {code}): {message}")
    if code in THROTTLE_CODES or response.status_code == 429:
        wait = throttle_wait(response.headers)
        return ThrottledError(f"Meta rate limit (code {code})", wait or DEFAULT_THROTTLE_WAIT)
    if code == REDUCE_DATA_CODE:
        return ReduceDataError(f"Meta asks for less data per call (code 1): {message}")
    if code == DEPRECATED_VERSION_CODE:
        return ConnectorError(
            f"Meta no longer serves API version {version} (code 2635): set "
            f"META_GRAPH_API_VERSION to a live version ({message})"
        )
    if response.status_code >= 500 or error.get("is_transient") or code == 2:
        return PageFailedError(f"Meta error {response.status_code} (code {code}): {message}")
    return ConnectorError(f"Meta refused the request (code {code}): {message}")


def throttle_wait(headers: httpx.Headers) -> float | None:
    """Seconds until access returns: the largest ``estimated_time_to_regain_access``
    (minutes) in ``x-business-use-case-usage``. None when the headers give no time."""
    try:
        usage = json.loads(headers.get("x-business-use-case-usage", "{}"))
        minutes = max(
            (
                float(entry.get("estimated_time_to_regain_access") or 0)
                for entries in usage.values()
                for entry in entries
            ),
            default=0.0,
        )
    except (ValueError, TypeError, AttributeError):
        return None
    return minutes * 60.0 if minutes > 0 else None


def _number(value: object) -> Decimal:
    return decimal_value(value, "Meta")
