"""Emulator of the Google Ads API REST reporting methods (googleAds:search and searchStream).

As strict as Google: only the versions Google serves on the emulator's date (a sunset one
answers 400 ``UNSUPPORTED_VERSION``, one never released 404), a ``developer-token`` on
every request, ``login-customer-id`` for a customer reached through a manager account,
quota errors with their delay in the body only (no ``Retry-After``), and zero-valued
metrics left out of the JSON as proto3 JSON does.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from devstack.emulators.faults import Faults
from devstack.emulators.meta import LateData, days_between, synthetic_id, synthetic_metrics

Record = dict[str, Any]
# The versions Google serves and when each is sunset, as published (read 2026-12-03: the
# Google Ads developer blog's sunset reminders and its 2026 release table, which gives the
# month only for v23..v26; the 1st is taken). None: not published in the sources read.
VERSIONS: dict[int, tuple[date | None, date]] = {
    20: (date(2025, 6, 4), date(2026, 6, 10)),
    21: (None, date(2026, 8, 5)),
    22: (None, date(2026, 10, 7)),
    23: (None, date(2027, 2, 1)),
    24: (None, date(2027, 5, 1)),
    25: (date(2026, 7, 22), date(2027, 8, 1)),
    26: (date(2026, 10, 14), date(2027, 11, 1)),
}
PERMISSION_MESSAGE = (
    "User doesn't have permission to access customer. Note: If you're accessing a client "
    "customer, the manager's customer id must be set in the 'login-customer-id' header. See "
    "https://developers.google.com/google-ads/api/docs/concepts/call-structure#cid"
)
NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html lang=en><title>Error 404 (Not Found)!!1</title>"
    "<p><b>404.</b> <ins>That's an error.</ins><p>The requested URL was not found on this "
    "server. <ins>That's all we know.</ins></html>"
)
PAGE_SIZE = 10_000  # fixed by the API since v17; setting pageSize is an error
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
# GAQL field -> (row object, JSON key) for the fields the emulator serves.
FIELDS = {
    "campaign.resource_name": ("campaign", "resourceName"),
    "campaign.id": ("campaign", "id"),
    "campaign.name": ("campaign", "name"),
    "campaign.status": ("campaign", "status"),
    "segments.date": ("segments", "date"),
    "metrics.impressions": ("metrics", "impressions"),
    "metrics.clicks": ("metrics", "clicks"),
    "metrics.cost_micros": ("metrics", "costMicros"),
    "metrics.conversions": ("metrics", "conversions"),
}
_SELECT = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)", re.I | re.S)
_BETWEEN = re.compile(
    r"segments\.date\s+BETWEEN\s+'(\d{4}-\d{2}-\d{2})'\s+AND\s+'(\d{4}-\d{2}-\d{2})'", re.I
)


_STATUS_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
}


def google_error_body(
    status: int,
    message: str,
    error_code: Record | None = None,
    version: int = max(VERSIONS),
    **details: Any,
) -> dict[str, Any]:
    """Return a Google API error body, with a GoogleAdsFailure detail when a code is given:
    the top-level message is the status's, the failure's is the specific one."""
    top = _STATUS_MESSAGES.get(status, message) if error_code is not None else message
    error: Record = {"code": status, "message": top, "status": _STATUS_NAMES.get(status)}
    if error_code is not None:
        failure: Record = {"errorCode": error_code, "message": message}
        if details:
            failure["details"] = details
        error["details"] = [
            {
                "@type": (
                    f"type.googleapis.com/google.ads.googleads.v{version}.errors.GoogleAdsFailure"
                ),
                "errors": [failure],
                "requestId": uuid.uuid4().hex[:22],
            }
        ]
    return {"error": error}


def _error(
    status: int, message: str, error_code: Record, version: int = max(VERSIONS), **details: Any
) -> JSONResponse:
    body = google_error_body(status, message, error_code, version, **details)
    return JSONResponse(body, status_code=status)


@dataclass
class _Customer:
    campaigns: int
    manager_id: str | None = None  # reached through this manager account (login-customer-id)
    late: LateData = field(default_factory=LateData)


class GoogleAdsEmulator:
    """In-memory Google Ads reporting: campaign x day rows, paging, quota and auth errors."""

    def __init__(
        self,
        valid_tokens: set[str] | None = None,
        *,
        developer_token: str | None = None,
        page_size: int = PAGE_SIZE,
        seed: int = 0,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.valid_tokens = valid_tokens  # None accepts any bearer token not marked expired
        # The OAuth emulator's view of the tokens it minted (expired, revoked); set by the
        # emulator stack. Tokens it did not mint follow the rules above.
        self.token_state: Callable[[str], str | None] | None = None
        # A developer-token header is always required; None accepts any non-empty one.
        self.developer_token = developer_token
        self.today = today  # which versions are served depends on the date
        self.page_size = page_size  # the real API's is fixed at 10,000; smaller pages for tests
        self.faults = Faults(seed=seed, error_body=lambda s, m: google_error_body(s, m))
        self._lock = threading.Lock()
        self._customers: dict[str, _Customer] = {}
        self._expired: set[str] = set()
        self._throttles: list[float] = []
        self._page_failures: dict[tuple[str, int], int] = {}
        self._requests: list[Record] = []
        base = "/{version}/customers/{customer_id}"
        routes = [
            Route(base + "/googleAds:search", self._search, methods=["POST"]),
            Route(base + "/googleAds:searchStream", self._search_stream, methods=["POST"]),
            Route("/_emulator/requests", self._http_requests, methods=["GET"]),
            Route("/_emulator/customers", self._http_configure, methods=["POST"]),
            Route("/_emulator/reset", self._http_reset, methods=["POST"]),
            self.faults.control_route(),
        ]
        self.app = self.faults.middleware(Starlette(routes=routes))

    # -- control -------------------------------------------------------------------------

    def configure_customer(
        self, customer_id: str, *, campaigns: int = 3, manager_id: str | None = None
    ) -> None:
        """Create or replace a customer with N campaigns; with ``manager_id``, the customer
        is reached through that manager account (requests need it as login-customer-id)."""
        manager = manager_id.replace("-", "") if manager_id else None
        with self._lock:
            self._customers[customer_id.replace("-", "")] = _Customer(campaigns, manager)

    def served_versions(self) -> list[int]:
        """The major versions served on the emulator's date."""
        today = self.today()
        return [
            v
            for v, (released, sunset) in VERSIONS.items()
            if (released is None or released <= today) and today < sunset
        ]

    def bump_values(self, customer_id: str, dates: list[str] | None = None) -> None:
        """Raise a customer's values (only on ``dates`` if given), as late conversions do."""
        with self._lock:
            self._customers[customer_id.replace("-", "")].late.bump(dates)

    def expire_token(self, token: str) -> None:
        """Make an OAuth access token fail with UNAUTHENTICATED / OAUTH_TOKEN_EXPIRED."""
        with self._lock:
            self._expired.add(token)

    def throttle_next(self, n: int = 1, retry_after_s: float = 30) -> None:
        """Answer the next ``n`` reporting requests with 429 RESOURCE_EXHAUSTED, the delay in
        ``quotaErrorDetails.retryDelay``."""
        with self._lock:
            self._throttles.extend([retry_after_s] * n)

    def fail_page(self, customer_id: str, page_index: int, *, times: int = 1) -> None:
        """Answer page ``page_index`` (0-based) of a customer's search with 500 INTERNAL."""
        with self._lock:
            key = (customer_id.replace("-", ""), page_index)
            self._page_failures[key] = self._page_failures.get(key, 0) + times

    def reset(self) -> None:
        """Forget customers, tokens, throttles, failures, requests and faults."""
        with self._lock:
            self._customers.clear()
            self._expired.clear()
            self._throttles.clear()
            self._page_failures.clear()
            self._requests.clear()
        self.faults.reset()

    # -- inspection ----------------------------------------------------------------------

    def requests(self) -> list[Record]:
        """Return every reporting request served (customer, page, headers, status)."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def request_count(self, customer_id: str | None = None) -> int:
        """Return how many reporting requests were served (for one customer if given)."""
        wanted = customer_id.replace("-", "") if customer_id else None
        return sum(1 for r in self.requests() if wanted in (None, r["customer_id"]))

    def expected_rows(self, customer_id: str, since: str, until: str) -> list[Record]:
        """Return every row (all fields) a campaign x day query over the range returns."""
        with self._lock:
            return self._rows(customer_id.replace("-", ""), since, until)

    # -- synthetic data ------------------------------------------------------------------

    def _rows(self, customer_id: str, since: str, until: str) -> list[Record]:
        customer = self._customers[customer_id]
        rows = []
        for day in days_between(date.fromisoformat(since), date.fromisoformat(until)):
            revision = customer.late.revision(day)
            for index in range(customer.campaigns):
                values = synthetic_metrics(f"{customer_id}/{index}", day, revision)
                campaign_id = synthetic_id("google-campaign", customer_id, index)
                campaign = {
                    "resourceName": f"customers/{customer_id}/campaigns/{campaign_id}",
                    "status": "ENABLED",
                    "name": f"Campaign {index + 1}",
                    "id": campaign_id,
                }
                # int64 metrics are JSON strings, doubles numbers; proto3 JSON leaves out a
                # metric whose value is zero.
                metrics: Record = {
                    "clicks": str(values["clicks"]),
                    "conversions": float(values["conversions"]),
                    "costMicros": str(values["cost_cents"] * 10_000),
                    "impressions": str(values["impressions"]),
                }
                metrics = {k: v for k, v in metrics.items() if float(v) != 0}
                rows.append({"campaign": campaign, "metrics": metrics, "segments": {"date": day}})
        return rows

    # -- the API -------------------------------------------------------------------------

    def _version(self, raw: str) -> int | Response:
        """The major version of the path, or the answer Google gives for one it does not
        serve: 400 UNSUPPORTED_VERSION once sunset, 404 for one that never existed."""
        match = re.fullmatch(r"v(\d{1,3})", raw)
        version = int(match.group(1)) if match else None
        if version is not None and version in self.served_versions():
            return version
        if version is not None and version in VERSIONS and self.today() >= VERSIONS[version][1]:
            message = (
                f" Version v{version} is deprecated. Requests to this version will be blocked."
            )
            return _error(400, message, {"requestError": "UNSUPPORTED_VERSION"}, version)
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404)

    def _gate(self, request: Request, customer_id: str, version: int) -> JSONResponse | None:
        """Check credentials, developer token, customer access and queued throttles (lock held)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            message = "Request is missing required authentication credential."
            code = {"authenticationError": "OAUTH_TOKEN_HEADER_INVALID"}
            return _error(401, message, code, version)
        minted = self.token_state(token) if self.token_state is not None else None
        if token in self._expired or minted == "expired":
            message = "Request had invalid authentication credentials: the access token expired."
            return _error(401, message, {"authenticationError": "OAUTH_TOKEN_EXPIRED"}, version)
        if minted == "revoked":
            message = "Request had invalid authentication credentials: the token was revoked."
            return _error(401, message, {"authenticationError": "OAUTH_TOKEN_REVOKED"}, version)
        if self.valid_tokens is not None and token not in self.valid_tokens:
            message = "Request had invalid authentication credentials."
            return _error(401, message, {"authenticationError": "OAUTH_TOKEN_INVALID"}, version)
        # Required on every request. (Google's policy page is reported to call the token
        # optional since 2026-09-09, while requests without one were still refused after that
        # date; the emulator refuses, as the API was observed to.)
        dev_token = request.headers.get("developer-token", "")
        if not dev_token:
            message = "developer-token parameter is missing."
            code = {"requestError": "DEVELOPER_TOKEN_PARAMETER_MISSING"}
            return _error(400, message, code, version)
        if self.developer_token is not None and dev_token != self.developer_token:
            message = "The developer token is not valid."
            return _error(401, message, {"authenticationError": "DEVELOPER_TOKEN_INVALID"}, version)
        customer = self._customers.get(customer_id)
        login = request.headers.get("login-customer-id")
        if login is not None and not re.fullmatch(r"\d{10}", login):
            message = "Invalid login-customer-id header: it must be 10 digits without dashes."
            return _error(400, message, {"requestError": "INVALID_CUSTOMER_ID"}, version)
        # Reached through a manager: its id is required; reached directly: none, or its own.
        allowed = {customer.manager_id} if customer and customer.manager_id else {None, customer_id}
        if customer is None or login not in allowed:
            code = {"authorizationError": "USER_PERMISSION_DENIED"}
            return _error(403, PERMISSION_MESSAGE, code, version)
        if self._throttles:
            delay = math.ceil(self._throttles.pop(0))
            quota = {"rateScope": "DEVELOPER", "rateName": "Requests per developer token"}
            return _error(
                429,
                f"Too many requests. Retry in {delay} seconds.",
                {"quotaError": "RESOURCE_EXHAUSTED"},
                version,
                quotaErrorDetails=quota | {"retryDelay": f"{delay}s"},
            )
        return None

    async def _serve(self, request: Request, *, stream: bool) -> Response:
        customer_id = request.path_params["customer_id"]
        version = self._version(request.path_params["version"])
        try:
            body = await request.json()
        except ValueError:
            body = {}
        with self._lock:
            log: Record = {"path": request.url.path, "customer_id": customer_id, "page_index": 0}
            log["login_customer_id"] = request.headers.get("login-customer-id")
            log["developer_token"] = request.headers.get("developer-token")
            self._requests.append(log)
            if isinstance(version, Response):
                response: Response = version
            else:
                response = self._gate(request, customer_id, version) or self._answer(
                    request, customer_id, body, log, version, stream=stream
                )
            log["status"] = response.status_code
        return response

    def _answer(
        self,
        request: Request,
        customer_id: str,
        body: Record,
        log: Record,
        version: int,
        *,
        stream: bool,
    ) -> JSONResponse:
        """Run the GAQL query and build the page (lock held)."""
        query = str(body.get("query", ""))
        if "pageSize" in body:  # an error in every version served (since v17)
            message = (
                "Setting the page size is not supported. "
                "Search Responses will have fixed page size of '10000' rows."
            )
            return _error(400, message, {"requestError": "PAGE_SIZE_NOT_SUPPORTED"}, version)
        select, between = _SELECT.match(query), _BETWEEN.search(query)
        if select is None or select["resource"].lower() != "campaign":
            message = "The emulator serves SELECT ... FROM campaign queries only."
            return _error(400, message, {"queryError": "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"}, version)
        fields = [f.strip() for f in select["fields"].split(",")]
        if unknown := [f for f in fields if f not in FIELDS]:
            message = f"Unrecognized field in the query: '{unknown[0]}'."
            return _error(400, message, {"queryError": "UNRECOGNIZED_FIELD"}, version)
        if between is None:
            message = "The query needs segments.date BETWEEN 'YYYY-MM-DD' AND 'YYYY-MM-DD'."
            return _error(400, message, {"queryError": "EXPECTED_FILTERS_ON_DATE_RANGE"}, version)
        rows = [self._select(row, fields) for row in self._rows(customer_id, *between.groups())]
        mask = ",".join(".".join(FIELDS[f]) for f in fields)
        if stream:
            return JSONResponse(
                [{"results": rows, "fieldMask": mask, "requestId": uuid.uuid4().hex}]
            )
        query_hash = hashlib.sha256(query.encode()).hexdigest()[:12]
        offset = 0
        if token := body.get("pageToken"):
            try:
                token_hash, raw = base64.urlsafe_b64decode(token).decode().split(":")
                offset = int(raw)
            except ValueError:
                token_hash = ""
            if token_hash != query_hash:
                message = "Page token is invalid or does not match the query."
                return _error(400, message, {"requestError": "INVALID_PAGE_TOKEN"}, version)
        page_index = offset // self.page_size
        log["page_index"] = page_index
        if self._page_failures.get((customer_id, page_index), 0) > 0:
            self._page_failures[(customer_id, page_index)] -= 1
            message = "Internal error encountered."
            return _error(500, message, {"internalError": "INTERNAL_ERROR"}, version)
        end = offset + self.page_size
        answer: Record = {"results": rows[offset:end], "fieldMask": mask}
        if end < len(rows):
            answer["nextPageToken"] = base64.urlsafe_b64encode(
                f"{query_hash}:{end}".encode()
            ).decode()
        answer["queryResourceConsumption"] = str(len(rows[offset:end]))
        return JSONResponse(answer)

    @staticmethod
    def _select(row: Record, fields: list[str]) -> Record:
        """Keep the selected fields; the FROM resource's resourceName is always returned."""
        keep = {FIELDS[f] for f in fields} | {("campaign", "resourceName")}
        picked: Record = {}
        for obj, key in sorted(keep):
            if key in row[obj]:  # a zero metric is left out of the JSON
                picked.setdefault(obj, {})[key] = row[obj][key]
        return picked

    async def _search(self, request: Request) -> Response:
        return await self._serve(request, stream=False)

    async def _search_stream(self, request: Request) -> Response:
        return await self._serve(request, stream=True)

    # -- HTTP control endpoints ----------------------------------------------------------

    async def _http_requests(self, request: Request) -> Response:
        return JSONResponse({"count": self.request_count(), "data": self.requests()})

    async def _http_configure(self, request: Request) -> Response:
        body = await request.json()
        self.configure_customer(
            str(body["customer_id"]),
            campaigns=int(body.get("campaigns", 3)),
            manager_id=body.get("manager_id"),
        )
        return JSONResponse({"customer_id": body["customer_id"]})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})
