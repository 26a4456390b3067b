"""Emulator of the Google Ads API REST reporting methods (googleAds:search and searchStream)."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.faults import Faults
from emulators.meta import LateData, days_between, synthetic_id, synthetic_metrics

Record = dict[str, Any]
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


def google_error_body(
    status: int, message: str, error_code: Record | None = None, **details: Any
) -> dict[str, Any]:
    """Return a Google API error body, with a GoogleAdsFailure detail when a code is given."""
    error: Record = {"code": status, "message": message, "status": _STATUS_NAMES.get(status)}
    if error_code is not None:
        failure: Record = {"errorCode": error_code, "message": message}
        if details:
            failure["details"] = details
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.ads.googleads.v20.errors.GoogleAdsFailure",
                "errors": [failure],
                "requestId": uuid.uuid4().hex[:22],
            }
        ]
    return {"error": error}


def _error(
    status: int,
    message: str,
    error_code: Record,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    body = google_error_body(status, message, error_code, **details)
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class _Customer:
    campaigns: int
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
    ) -> None:
        self.valid_tokens = valid_tokens  # None accepts any bearer token not marked expired
        self.developer_token = developer_token  # None accepts any (or no) developer-token
        self.page_size = page_size  # the real API's is fixed at 10,000; smaller pages for tests
        self.faults = Faults(seed=seed, error_body=lambda s, m: google_error_body(s, m))
        self._lock = threading.Lock()
        self._customers: dict[str, _Customer] = {}
        self._expired: set[str] = set()
        self._throttles: list[float] = []
        self._page_failures: dict[tuple[str, int], int] = {}
        self._requests: list[Record] = []
        base = "/v{version:int}/customers/{customer_id}"
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

    def configure_customer(self, customer_id: str, *, campaigns: int = 3) -> None:
        """Create or replace a customer (digits, no dashes) with N campaigns."""
        with self._lock:
            self._customers[customer_id.replace("-", "")] = _Customer(campaigns)

    def bump_values(self, customer_id: str, dates: list[str] | None = None) -> None:
        """Raise a customer's values (only on ``dates`` if given), as late conversions do."""
        with self._lock:
            self._customers[customer_id.replace("-", "")].late.bump(dates)

    def expire_token(self, token: str) -> None:
        """Make an OAuth access token fail with UNAUTHENTICATED / OAUTH_TOKEN_EXPIRED."""
        with self._lock:
            self._expired.add(token)

    def throttle_next(self, n: int = 1, retry_after_s: float = 30) -> None:
        """Answer the next ``n`` reporting requests with 429 RESOURCE_EXHAUSTED."""
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
                metrics = {
                    "clicks": str(values["clicks"]),
                    "conversions": float(values["conversions"]),
                    "costMicros": str(values["cost_cents"] * 10_000),
                    "impressions": str(values["impressions"]),
                }
                rows.append({"campaign": campaign, "metrics": metrics, "segments": {"date": day}})
        return rows

    # -- the API -------------------------------------------------------------------------

    def _gate(self, request: Request, customer_id: str) -> JSONResponse | None:
        """Check credentials, customer and queued throttles (lock held)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            message = "Request is missing required authentication credential."
            return _error(401, message, {"authenticationError": "OAUTH_TOKEN_HEADER_INVALID"})
        if token in self._expired:
            message = "Request had invalid authentication credentials: the access token expired."
            return _error(401, message, {"authenticationError": "OAUTH_TOKEN_EXPIRED"})
        if self.valid_tokens is not None and token not in self.valid_tokens:
            message = "Request had invalid authentication credentials."
            return _error(401, message, {"authenticationError": "OAUTH_TOKEN_INVALID"})
        dev_token = request.headers.get("developer-token")
        if self.developer_token is not None and dev_token != self.developer_token:
            message = "The developer token is not valid."
            return _error(401, message, {"authenticationError": "DEVELOPER_TOKEN_INVALID"})
        if customer_id not in self._customers:
            message = "The caller does not have permission"
            return _error(403, message, {"authorizationError": "USER_PERMISSION_DENIED"})
        if self._throttles:
            delay = math.ceil(self._throttles.pop(0))
            quota = {"rateScope": "DEVELOPER", "rateName": "Requests per developer token"}
            return _error(
                429,
                f"Too many requests. Retry in {delay} seconds.",
                {"quotaError": "RESOURCE_EXHAUSTED"},
                {"Retry-After": str(delay)},
                quotaErrorDetails=quota | {"retryDelay": f"{delay}s"},
            )
        return None

    async def _serve(self, request: Request, *, stream: bool) -> Response:
        customer_id = request.path_params["customer_id"]
        try:
            body = await request.json()
        except ValueError:
            body = {}
        with self._lock:
            log: Record = {"path": request.url.path, "customer_id": customer_id, "page_index": 0}
            log["login_customer_id"] = request.headers.get("login-customer-id")
            log["developer_token"] = request.headers.get("developer-token")
            self._requests.append(log)
            response = self._gate(request, customer_id) or self._answer(
                request, customer_id, body, log, stream=stream
            )
            log["status"] = response.status_code
        return response

    def _answer(
        self, request: Request, customer_id: str, body: Record, log: Record, *, stream: bool
    ) -> JSONResponse:
        """Run the GAQL query and build the page (lock held)."""
        query = str(body.get("query", ""))
        if "pageSize" in body and request.path_params["version"] >= 17:
            message = (
                "Setting the page size is not supported. "
                "Search Responses will have fixed page size of '10000' rows."
            )
            return _error(400, message, {"requestError": "PAGE_SIZE_NOT_SUPPORTED"})
        select, between = _SELECT.match(query), _BETWEEN.search(query)
        if select is None or select["resource"].lower() != "campaign":
            message = "The emulator serves SELECT ... FROM campaign queries only."
            return _error(400, message, {"queryError": "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"})
        fields = [f.strip() for f in select["fields"].split(",")]
        if unknown := [f for f in fields if f not in FIELDS]:
            message = f"Unrecognized field in the query: '{unknown[0]}'."
            return _error(400, message, {"queryError": "UNRECOGNIZED_FIELD"})
        if between is None:
            message = "The query needs segments.date BETWEEN 'YYYY-MM-DD' AND 'YYYY-MM-DD'."
            return _error(400, message, {"queryError": "EXPECTED_FILTERS_ON_DATE_RANGE"})
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
                return _error(400, message, {"requestError": "INVALID_PAGE_TOKEN"})
        page_index = offset // self.page_size
        log["page_index"] = page_index
        if self._page_failures.get((customer_id, page_index), 0) > 0:
            self._page_failures[(customer_id, page_index)] -= 1
            return _error(500, "Internal error encountered.", {"internalError": "INTERNAL_ERROR"})
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
        self.configure_customer(str(body["customer_id"]), campaigns=int(body.get("campaigns", 3)))
        return JSONResponse({"customer_id": body["customer_id"]})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})
