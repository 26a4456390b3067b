"""Emulator of Meta's Graph API Insights edges with deterministic synthetic metrics.

As strict as Meta: only the Marketing API versions Meta serves on the emulator's date (an
expired one answers error #2635), throttling signalled the way Meta does (error 80000 and
the ``x-business-use-case-usage`` / ``x-fb-ads-insights-throttle`` headers, never a
``Retry-After``), error 1 when a call asks for more data than the account's limit, and the
``conversions`` list with overlapping action types, left out of a row that has none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults
from devstack.emulators.tokens import Clock, TokenStore

Record = dict[str, Any]
DEFAULT_LIMIT = 25
LEVELS = ("account", "campaign", "ad")
ID_FIELDS = ("account_id", "campaign_id", "campaign_name", "ad_id", "ad_name")
METRIC_FIELDS = ("impressions", "clicks", "spend", "ctr", "cpc", "actions", "conversions")
KNOWN_FIELDS = frozenset(ID_FIELDS + METRIC_FIELDS)
PURCHASE = "offsite_conversion.fb_pixel_purchase"
OMNI_PURCHASE = "omni_purchase"  # every purchase, pixel ones included: overlaps PURCHASE
LEAD = "offsite_conversion.fb_pixel_lead"
# Marketing API versions: (released, expires), from Meta's "Marketing API version history"
# read 2026-12-03. None: expiry not announced ("TBD").
VERSIONS: dict[str, tuple[date, date | None]] = {
    "v21.0": (date(2024, 10, 2), date(2025, 9, 9)),
    "v22.0": (date(2025, 1, 21), date(2026, 2, 19)),
    "v23.0": (date(2025, 5, 29), date(2026, 6, 9)),
    "v24.0": (date(2025, 10, 8), date(2026, 11, 10)),
    "v25.0": (date(2026, 2, 18), date(2027, 2, 23)),
    "v26.0": (date(2026, 7, 29), None),
    "v27.0": (date(2026, 11, 4), None),
}
REDUCE_DATA = "Please reduce the amount of data you're asking for, then retry your request"
# The emulated Meta app long-lived tokens are exchanged with (oauth/access_token).
DEV_APP_ID = "100000000000001"
DEV_APP_SECRET = "dev-emulator-meta-app-secret"
SHORT_LIVED = timedelta(hours=2)
LONG_LIVED = timedelta(seconds=5183944)  # "expires_in": 5183944, as Meta's docs show it
# Error 190's subcodes (Graph API "Handling Errors"): 458 app not installed (access
# removed), 460 password changed, 463 expired, 467 invalid token.
REVOKED_MESSAGES = {
    458: "Error validating access token: The user has not authorized application {app}.",
    460: "Error validating access token: The session has been invalidated because the user "
    "changed their password or Facebook has changed the session for security reasons.",
    467: "Error validating access token: Invalid OAuth access token.",
}


def synthetic_metrics(entity: str, day: str, revision: int = 0) -> dict[str, int]:
    """Return one entity's metrics for one day: a pure function of its arguments."""
    a, b, c, d = struct.unpack(">4H", hashlib.sha256(f"{entity}|{day}".encode()).digest()[:8])
    impressions = 500 + a % 5000 + revision * (50 + b % 50)
    clicks = impressions * (5 + b % 45) // 1000
    return {
        "impressions": impressions,
        "clicks": clicks,
        "cost_cents": clicks * (20 + c % 180),
        "conversions": (clicks + 3 * revision) // (8 + d % 17),
    }


def days_between(since: date, until: date) -> list[str]:
    """Return every ISO date from ``since`` to ``until`` inclusive."""
    return [(since + timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]


def synthetic_id(*parts: object) -> str:
    """Return a stable numeric id for the given parts, shaped like Meta's and Google's ids."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return str(10**14 + int(digest[:12], 16) % 9 * 10**13 + int(digest[12:24], 16) % 10**13)


def meta_error_body(status: int, message: str, code: int | None = None) -> dict[str, Any]:
    """Return a Graph API error body; 5xx errors are transient (code 2)."""
    error: Record = {"message": message, "type": "OAuthException"}
    error["code"] = code if code is not None else (2 if status >= 500 else 1)
    if error["code"] == 2:
        error["is_transient"] = True
    error["fbtrace_id"] = "A" + uuid.uuid4().hex[:22]
    return {"error": error}


def _error(status: int, message: str, code: int, **extra: Any) -> JSONResponse:
    body = meta_error_body(status, message, code)
    headers = extra.pop("headers", {})
    body["error"] |= extra
    return JSONResponse(body, status_code=status, headers=headers)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    return int(raw.removeprefix("offset:"))


def _usage(percent: int, regain_minutes: int = 0) -> Record:
    """Return one ads_insights entry of the ``x-business-use-case-usage`` header."""
    entry: Record = {"type": "ads_insights"}
    entry |= dict.fromkeys(("call_count", "total_cputime", "total_time"), percent)
    return entry | {
        "estimated_time_to_regain_access": regain_minutes,
        "ads_api_access_tier": "standard_access",
    }


def usage_headers(account_id: str, percent: int, regain_minutes: int = 0) -> dict[str, str]:
    """The usage headers of an insights answer: business use case usage (per ad account,
    with the minutes until access returns) and the insights load, which carries no time."""
    throttle = {"app_id_util_pct": percent, "acc_id_util_pct": percent}
    return {
        "x-business-use-case-usage": json.dumps({account_id: [_usage(percent, regain_minutes)]}),
        "x-fb-ads-insights-throttle": json.dumps(
            throttle | {"ads_api_access_tier": "standard_access"}
        ),
    }


def _day(value: str) -> date:
    """Parse an Instagram ``since``/``until``: a unix timestamp or an ISO date."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC).date()
    return date.fromisoformat(value)


@dataclass
class LateData:
    """How many times late-arriving data raised an account's values: overall and per date."""

    overall: int = 0
    by_date: dict[str, int] = field(default_factory=dict)

    def bump(self, dates: list[str] | None = None) -> None:
        """Raise every date's revision, or only those of ``dates``."""
        if dates is None:
            self.overall += 1
        for day in dates or []:
            self.by_date[day] = self.by_date.get(day, 0) + 1

    def revision(self, day: str) -> int:
        """Return the revision the values of ``day`` are computed at."""
        return self.overall + self.by_date.get(day, 0)


@dataclass
class _Account:
    campaigns: int
    ads_per_campaign: int
    late: LateData = field(default_factory=LateData)


class MetaEmulator:
    """In-memory Graph API Insights for ad accounts and Instagram users, with throttling."""

    def __init__(
        self,
        valid_tokens: set[str] | None = None,
        *,
        seed: int = 0,
        today: Callable[[], date] = date.today,
        max_rows_per_call: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.valid_tokens = valid_tokens  # None accepts any token not marked expired
        # User tokens issued here (exchange): they expire on the clock and can be revoked.
        self.clock = clock or Clock()
        self.tokens = TokenStore(self.clock, "EAAB")
        self.app_id, self.app_secret = DEV_APP_ID, DEV_APP_SECRET
        self.today = today  # which versions are served depends on the date
        # Meta's data-per-call limit: a query whose result has more rows answers error 1.
        self.max_rows_per_call = max_rows_per_call
        self.faults = Faults(seed=seed, error_body=meta_error_body)
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._ig_users: set[str] = set()
        self._expired: set[str] = set()
        self._throttles: list[tuple[float, int]] = []
        self._throttle_after = 0  # requests answered before the queued throttles apply
        self._page_failures: dict[tuple[str, int], int] = {}
        self._requests: list[Record] = []
        routes = [
            Route("/{version}/oauth/access_token", self._exchange, methods=["GET"]),
            Route("/_emulator/tokens", self._http_issue, methods=["POST"]),
            Route("/_emulator/revoke", self._http_revoke, methods=["POST"]),
            Route("/{version}/act_{account_id}/insights", self._insights, methods=["GET"]),
            Route("/{version}/{ig_user_id}/insights", self._ig_insights, methods=["GET"]),
            Route("/_emulator/requests", self._http_requests, methods=["GET"]),
            Route("/_emulator/accounts", self._http_configure, methods=["POST"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control -------------------------------------------------------------------------

    def configure_account(self, account_id: str, *, campaigns: int = 3, ads: int = 1) -> None:
        """Create or replace an ad account (id without ``act_``) with N campaigns of M ads."""
        with self._lock:
            self._accounts[account_id.removeprefix("act_")] = _Account(campaigns, ads)

    def configure_instagram_user(self, ig_user_id: str) -> None:
        """Serve insights for an Instagram professional account id."""
        with self._lock:
            self._ig_users.add(ig_user_id)

    def bump_values(self, account_id: str, dates: list[str] | None = None) -> None:
        """Raise an account's values (only on ``dates`` if given), as late-arriving data does."""
        with self._lock:
            self._accounts[account_id.removeprefix("act_")].late.bump(dates)

    def expire_token(self, token: str) -> None:
        """Make a token fail with OAuthException code 190 from now on."""
        with self._lock:
            self._expired.add(token)

    def issue_user_token(self, user: str = "user-1", *, long_lived: bool = False) -> str:
        """A user access token as Facebook Login gives it: short-lived (about two hours),
        or long-lived (~60 days) as an exchange gives it."""
        kind, lifetime = ("long", LONG_LIVED) if long_lived else ("short", SHORT_LIVED)
        return self.tokens.issue(user, kind, lifetime).token

    def revoke(self, token_or_user: str, subcode: int = 458) -> int:
        """The user removed the app (458), changed their password (460), ...: their tokens
        answer error 190 with that subcode from now on."""
        return self.tokens.revoke(token_or_user, subcode)

    def served_versions(self) -> list[str]:
        """The versions served on the emulator's date, oldest first."""
        today = self.today()
        return [
            v
            for v, (released, expires) in VERSIONS.items()
            if released <= today and (expires is None or today < expires)
        ]

    def throttle_next(
        self, n: int = 1, retry_after_s: float = 60, *, code: int = 80000, after: int = 0
    ) -> None:
        """Answer the next ``n`` insights requests (once ``after`` more have been answered)
        with Meta's rate-limit error; the wait is announced (rounded up to minutes) in
        ``x-business-use-case-usage`` only."""
        with self._lock:
            self._throttles.extend([(retry_after_s, code)] * n)
            self._throttle_after = after

    def fail_page(self, account_id: str, page_index: int, *, times: int = 1) -> None:
        """Answer page ``page_index`` (0-based) of an account's insights with HTTP 500."""
        with self._lock:
            key = (account_id.removeprefix("act_"), page_index)
            self._page_failures[key] = self._page_failures.get(key, 0) + times

    def reset(self) -> None:
        """Forget accounts, tokens, throttles, failures, requests and faults."""
        with self._lock:
            for store in (self._accounts, self._ig_users, self._expired, self._page_failures):
                store.clear()
            self._throttles.clear()
            self._throttle_after = 0
            self._requests.clear()
        self.tokens.clear()
        self.faults.reset()

    # -- inspection ----------------------------------------------------------------------

    def requests(self) -> list[Record]:
        """Return every API request served (path, account, page, HTTP status), oldest first."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def request_count(self, account_id: str | None = None) -> int:
        """Return how many API requests were served (for one account if given)."""
        wanted = account_id.removeprefix("act_") if account_id else None
        return sum(1 for r in self.requests() if wanted in (None, r["account_id"]))

    def expected_rows(
        self, account_id: str, since: str, until: str, level: str = "campaign"
    ) -> list[Record]:
        """Return the daily rows (all fields) the API serves for an account and range."""
        account_id = account_id.removeprefix("act_")
        days = days_between(date.fromisoformat(since), date.fromisoformat(until))
        with self._lock:
            account = self._accounts[account_id]
            return [
                self._row(account_id, account, level, index, [day])
                for day in days
                for index in range(self._entity_count(account, level))
            ]

    # -- synthetic data ------------------------------------------------------------------

    @staticmethod
    def _entity_count(account: _Account, level: str) -> int:
        per = {"account": 1, "campaign": account.campaigns}
        return per.get(level, account.campaigns * account.ads_per_campaign)

    @staticmethod
    def _row(account_id: str, account: _Account, level: str, index: int, days: list[str]) -> Record:
        """Sum the leaf ads under entity ``index`` of ``level`` over ``days``."""
        per = account.ads_per_campaign
        leaves = [(c, a) for c in range(account.campaigns) for a in range(per)]
        if level == "campaign":
            leaves = [(index, a) for a in range(per)]
        elif level == "ad":
            leaves = [divmod(index, per)]
        totals = dict.fromkeys(("impressions", "clicks", "cost_cents", "conversions"), 0)
        for day in days:
            revision = account.late.revision(day)
            for c, a in leaves:
                entity = f"{account_id}/{c}/{a}"
                for key, value in synthetic_metrics(entity, day, revision).items():
                    totals[key] += value
        row: Record = {"account_id": account_id}
        campaign, ad = leaves[0]
        if level != "account":
            row["campaign_id"] = synthetic_id("campaign", account_id, campaign)
            row["campaign_name"] = f"Campaign {campaign + 1}"
        if level == "ad":
            row["ad_id"] = synthetic_id("ad", account_id, campaign, ad)
            row["ad_name"] = f"Ad {campaign + 1}.{ad + 1}"
        clicks, impressions, cents = totals["clicks"], totals["impressions"], totals["cost_cents"]
        purchases, leads = totals["conversions"], totals["clicks"] // 40
        # Overlapping action types, as Meta reports them: every pixel purchase is also an
        # omni_purchase. A type with no actions is left out, and so is an empty list.
        conversions = [
            {"action_type": kind, "value": str(value)}
            for kind, value in ((PURCHASE, purchases), (OMNI_PURCHASE, purchases), (LEAD, leads))
            if value
        ]
        row |= {
            "impressions": str(impressions),
            "clicks": str(clicks),
            "spend": f"{cents / 100:.2f}",
            "ctr": f"{100 * clicks / impressions:.6f}",
            "cpc": f"{cents / 100 / clicks:.6f}" if clicks else "0",
            "actions": [{"action_type": "link_click", "value": str(clicks)}, *conversions],
            "date_start": days[0],
            "date_stop": days[-1],
        }
        if conversions:
            row["conversions"] = conversions
        return row

    # -- the API -------------------------------------------------------------------------

    def _gate(self, request: Request, account_id: str) -> JSONResponse | None:
        """Check the token and queued throttles; record the request (lock held)."""
        auth = request.headers.get("authorization", "").partition(" ")[2]
        token = request.query_params.get("access_token") or auth
        if not token:
            return _error(400, "An access token is required to request this resource.", 104)
        header = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'}
        if (refused := self._token_refused(token)) is not None:
            return refused
        if token in self._expired:
            message = "Error validating access token: Session has expired."
            return _error(400, message, 190, error_subcode=463, headers=header)
        if self.valid_tokens is not None and token not in self.valid_tokens:
            message = "Invalid OAuth access token - Cannot parse access token"
            return _error(400, message, 190, headers=header)
        if self._throttles and self._throttle_after > 0:
            self._throttle_after -= 1
        elif self._throttles:
            retry_after, code = self._throttles.pop(0)
            headers = usage_headers(account_id, 100, math.ceil(retry_after / 60))
            message = (
                f"(#{code}) There have been too many calls from this ad-account. Wait a bit and "
                "try again. For more info, please refer to "
                "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
            )
            return _error(400, message, code, error_subcode=2446079, headers=headers)
        return None

    def _version_error(self, version: str, path: str) -> JSONResponse | None:
        """Meta's answer to a version it does not serve: #2635 for an expired one. For a
        version that never existed the error is not documented; code 2500 ("Unknown path
        components") is what an unknown path gets."""
        if version in self.served_versions():
            return None
        if version in VERSIONS and VERSIONS[version][0] <= self.today():
            latest = self.served_versions()[-1]
            message = (
                "(#2635) You are calling a deprecated version of the Ads API. Please update "
                f"to the latest version: {latest}."
            )
            return _error(400, message, 2635)
        return _error(400, f"Unknown path components: {path}", 2500)

    def _token_refused(self, token: str, *, unknown_too: bool = False) -> JSONResponse | None:
        """Error 190 for a token issued here that expired or was revoked (and, with
        ``unknown_too``, for one never issued here)."""
        issued = self.tokens.get(token)
        header = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'}
        if issued is None:
            if not unknown_too:
                return None
            message = "Invalid OAuth access token - Cannot parse access token"
            return _error(400, message, 190, headers=header)
        if issued.revoked is not None:
            message = REVOKED_MESSAGES.get(issued.revoked, REVOKED_MESSAGES[467])
            message = message.format(app=self.app_id)
            return _error(400, message, 190, error_subcode=issued.revoked, headers=header)
        now = self.clock.now()
        if issued.expires_at is not None and now >= issued.expires_at:
            message = (
                f"Error validating access token: Session has expired on "
                f"{issued.expires_at:%A, %d-%b-%y %H:%M:%S} UTC. The current time is "
                f"{now:%A, %d-%b-%y %H:%M:%S} UTC."
            )
            return _error(400, message, 190, error_subcode=463, headers=header)
        return None

    async def _exchange(self, request: Request) -> Response:
        """``GET /{version}/oauth/access_token?grant_type=fb_exchange_token``: a long-lived
        user token (~60 days) for a valid short- or long-lived one of the same user."""
        log: Record = {"path": request.url.path, "account_id": None, "page_index": None}
        response = self._exchanged(request)
        log["status"] = response.status_code
        with self._lock:
            self._requests.append(log)
        return response

    def _exchanged(self, request: Request) -> JSONResponse:
        params = request.query_params
        version = request.path_params["version"]
        if (refused := self._version_error(version, request.url.path)) is not None:
            return refused
        if params.get("grant_type") != "fb_exchange_token":
            return _error(400, "(#100) grant_type must be fb_exchange_token here", 100)
        if not params.get("client_id"):
            return _error(400, "Missing client_id parameter.", 101)
        if params.get("client_id") != self.app_id:
            return _error(400, "Error validating application. Invalid application ID.", 101)
        if params.get("client_secret") != self.app_secret:
            return _error(400, "Error validating client secret.", 1)
        token = params.get("fb_exchange_token", "")
        if not token:
            return _error(400, "(#100) Missing parameter fb_exchange_token", 100)
        if (refused := self._token_refused(token, unknown_too=True)) is not None:
            return refused
        issued = self.tokens.get(token)
        assert issued is not None
        fresh = self.tokens.issue(issued.subject, "long", LONG_LIVED)
        return JSONResponse(
            {
                "access_token": fresh.token,
                "token_type": "bearer",
                "expires_in": int(LONG_LIVED.total_seconds()),
            }
        )

    async def _insights(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        version = request.path_params["version"]
        with self._lock:
            log: Record = {"path": request.url.path, "account_id": account_id, "page_index": None}
            self._requests.append(log)
            response = (
                self._version_error(version, request.url.path)
                or self._gate(request, account_id)
                or self._page(request, account_id, log)
            )
            log["status"] = response.status_code
        return response

    def _page(self, request: Request, account_id: str, log: Record) -> JSONResponse:
        """Build one page of insights rows (lock held)."""
        params = request.query_params
        account = self._accounts.get(account_id)
        if account is None:
            message = f"Unsupported get request. Object with ID 'act_{account_id}' does not exist."
            return _error(400, message, 100, error_subcode=33)
        level = params.get("level", "account")
        try:
            window = json.loads(params.get("time_range", "null")) or {}
            since, until = date.fromisoformat(window["since"]), date.fromisoformat(window["until"])
            step = params.get("time_increment", "all_days")
            step_days = 0 if step == "all_days" else int(step)
            limit = int(params.get("limit", DEFAULT_LIMIT))
            offset = _offset(params["after"]) if "after" in params else 0
            if "before" in params:
                offset = max(_offset(params["before"]) - limit, 0)
        except (ValueError, KeyError, TypeError):
            message = "(#100) time_range {since, until}, time_increment, limit or after is invalid"
            return _error(400, message, 100)
        wanted = [f for f in params.get("fields", "").split(",") if f]
        if level not in LEVELS or set(wanted) - KNOWN_FIELDS:
            bad = sorted(set(wanted) - KNOWN_FIELDS) or [level]
            return _error(400, f"(#100) {', '.join(bad)} is not a valid value", 100)
        days = days_between(since, until)
        if len(days) < 1:
            return _error(400, "(#100) time_range: since must not be after until", 100)
        size = step_days or len(days)
        buckets = [days[i : i + size] for i in range(0, len(days), size)]
        count = self._entity_count(account, level)
        rows = [
            self._row(account_id, account, level, index, bucket)
            for bucket in buckets
            for index in range(count)
        ]
        if self.max_rows_per_call is not None and len(rows) > self.max_rows_per_call:
            return _error(500, REDUCE_DATA, 1)
        page_index = offset // max(limit, 1)
        log["page_index"] = page_index
        if self._page_failures.get((account_id, page_index), 0) > 0:
            self._page_failures[(account_id, page_index)] -= 1
            return _error(500, "An unexpected error has occurred. Please retry.", 2)
        fields = set(wanted or ["impressions", "spend"]) | {"date_start", "date_stop"}
        data = [
            {k: v for k, v in row.items() if k in fields} for row in rows[offset : offset + limit]
        ]
        end = offset + len(data)
        paging: Record = {"cursors": {"before": _cursor(offset), "after": _cursor(end)}}
        if end < len(rows):
            paging["next"] = str(request.url.include_query_params(after=_cursor(end)))
        if offset > 0:
            previous = request.url.remove_query_params("after")
            paging["previous"] = str(previous.include_query_params(before=_cursor(offset)))
        return JSONResponse({"data": data, "paging": paging}, headers=usage_headers(account_id, 1))

    async def _ig_insights(self, request: Request) -> Response:
        ig_user_id = request.path_params["ig_user_id"]
        params = request.query_params
        with self._lock:
            log: Record = {"path": request.url.path, "account_id": ig_user_id, "page_index": 0}
            self._requests.append(log)
            version = request.path_params["version"]
            response = self._version_error(version, request.url.path) or self._gate(
                request, ig_user_id
            )
            if response is None and ig_user_id not in self._ig_users:
                message = f"Unsupported get request. Object with ID '{ig_user_id}' does not exist."
                response = _error(400, message, 100, error_subcode=33)
            log["status"] = response.status_code if response else 200
        if response is not None:
            return response
        try:
            since, until = _day(params["since"]), _day(params["until"])
        except (KeyError, ValueError):
            return _error(400, "(#100) since and until must be unix times or dates", 100)
        data = [
            {
                "name": metric,
                "period": params.get("period", "day"),
                "values": [
                    {
                        "value": synthetic_metrics(f"ig/{ig_user_id}/{metric}", day)["clicks"],
                        "end_time": f"{day}T07:00:00+0000",
                    }
                    for day in days_between(since, until)
                ],
                "id": f"{ig_user_id}/insights/{metric}/day",
            }
            for metric in params.get("metric", "reach").split(",")
        ]
        return JSONResponse({"data": data})

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_requests(self, request: Request) -> Response:
        return JSONResponse({"count": self.request_count(), "data": self.requests()})

    async def _http_configure(self, request: Request) -> Response:
        body = await request.json()
        campaigns, ads = int(body.get("campaigns", 3)), int(body.get("ads", 1))
        self.configure_account(str(body["account_id"]), campaigns=campaigns, ads=ads)
        return JSONResponse({"account_id": body["account_id"]})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})

    async def _http_issue(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        token = self.issue_user_token(
            str(body.get("user", "user-1")), long_lived=bool(body.get("long_lived"))
        )
        return JSONResponse({"access_token": token})

    async def _http_revoke(self, request: Request) -> Response:
        body = await request.json()
        count = self.revoke(str(body["token"]), int(body.get("subcode", 458)))
        return JSONResponse({"revoked": count})
