"""The platforms' token endpoints: mint, exchange and refresh access tokens.

- Google: ``POST {oauth}/token`` (form) with ``grant_type=refresh_token``, the refresh
  token and the app's ``client_id`` / ``client_secret``: an access token for about an hour
  (``expires_in``). ``invalid_grant`` means the refresh token is revoked or expired for good.
- Meta: ``GET {graph}/{version}/oauth/access_token?grant_type=fb_exchange_token`` with the
  app's id and secret and the token to exchange: a long-lived user token (~60 days). A
  long-lived token is kept fresh by exchanging it again before it expires. Error 190
  (subcodes 458, 460, 463, 467, ...) means the token is expired, revoked or invalid.
- Threads: ``GET {threads}/access_token?grant_type=th_exchange_token`` (short-lived →
  long-lived, with the app secret) and ``GET {threads}/refresh_access_token?grant_type=
  th_refresh_token`` (long-lived → a new 60 days; the token must be at least 24 h old and
  unexpired).

Errors are sorted into three kinds, which decide what happens next: ``TokenRevoked`` (the
owner's consent is gone: pause and tell them), ``TokenRefused`` (our side is wrong, e.g.
the app's secret: fail the run, pause nothing) and ``TokenUnavailable`` (5xx, network,
throttling: retry). Tokens travel in the request only: no message here carries one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

# Meta's throttling codes (API too many calls, user too many calls, rate limits).
_META_THROTTLES = frozenset({4, 17, 32, 613})


class TokenError(Exception):
    """A token could not be minted, exchanged or refreshed."""


class TokenRevoked(TokenError):
    """The grant is gone for good (revoked consent, expired beyond refresh): reconnect."""


class TokenRefused(TokenError):
    """The platform refused the request for a reason on our side (the app's credentials,
    a token not yet refreshable); retrying the same request cannot help."""


class TokenUnavailable(TokenError):
    """The platform could not answer now (5xx, network, throttled): retry later."""


@dataclass(frozen=True)
class IssuedToken:
    """An access token and how long it lives (None: it does not expire)."""

    access_token: str = field(repr=False)
    expires_in: timedelta | None


@dataclass(frozen=True)
class TokenEndpoints:
    """Where the token endpoints are and the apps' credentials (None: not configured)."""

    google_oauth_url: str
    google_client_id: str | None = None
    google_client_secret: str | None = field(default=None, repr=False)
    meta_graph_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v26.0"
    meta_app_id: str | None = None
    meta_app_secret: str | None = field(default=None, repr=False)
    threads_url: str = "https://graph.threads.net"
    threads_app_secret: str | None = field(default=None, repr=False)


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _issued(body: dict[str, object], platform: str) -> IssuedToken:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenUnavailable(f"{platform} answered without an access token")
    expires = body.get("expires_in")
    if expires is None:
        return IssuedToken(token, None)
    try:
        seconds = int(str(expires))
    except ValueError:
        raise TokenUnavailable(f"{platform} answered with expires_in {expires!r}") from None
    return IssuedToken(token, timedelta(seconds=seconds))


async def _call(platform: str, request: Awaitable[httpx.Response]) -> httpx.Response:
    try:
        return await request
    except httpx.TransportError as exc:
        unreachable = f"{platform} token endpoint unreachable: {type(exc).__name__}"
        raise TokenUnavailable(unreachable) from None


# --- Google ------------------------------------------------------------------------------


async def mint_google_access_token(
    http: httpx.AsyncClient, endpoints: TokenEndpoints, refresh_token: str
) -> IssuedToken:
    """An access token for a Google Ads connection from its refresh token."""
    if not endpoints.google_client_id or not endpoints.google_client_secret:
        raise TokenRefused(
            "GOOGLE_OAUTH_CLIENT_ID and GOOGLE_OAUTH_CLIENT_SECRET are not set: Google Ads "
            "connections with a refresh token need the OAuth client they were granted to"
        )
    response = await _call(
        "Google",
        http.post(
            f"{endpoints.google_oauth_url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": endpoints.google_client_id,
                "client_secret": endpoints.google_client_secret,
            },
        ),
    )
    body = _json(response)
    if response.status_code == 200:
        return _issued(body, "Google")
    error = str(body.get("error") or "")
    described = str(body.get("error_description") or "")[:200]
    reason = f"Google OAuth {response.status_code} {error}: {described}".rstrip(": ")
    if error == "invalid_grant":
        raise TokenRevoked(reason)
    if response.status_code == 429 or response.status_code >= 500:
        raise TokenUnavailable(reason)
    raise TokenRefused(reason)  # invalid_client, unauthorized_client, invalid_request, ...


# --- Meta and Threads -----------------------------------------------------------------------


def _graph_error(platform: str, response: httpx.Response) -> TokenError:
    """Sort a Graph API error (Meta's or Threads')."""
    error = _json(response).get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = str(error.get("message") or "")[:200]
    named = f"code {code}" + (f"/{subcode}" if subcode else "")
    reason = f"{platform} {response.status_code} ({named}): {message}"
    if code in (190, 102):  # access token expired, revoked or invalid: log in again
        return TokenRevoked(reason)
    if code in _META_THROTTLES or code == 2 or error.get("is_transient"):
        return TokenUnavailable(reason)
    if response.status_code >= 500 or response.status_code == 429:
        return TokenUnavailable(reason)
    return TokenRefused(reason)  # 1 (app secret), 101 (app id), 100 (parameter), ...


async def exchange_meta_token(
    http: httpx.AsyncClient, endpoints: TokenEndpoints, token: str
) -> IssuedToken:
    """A (new) long-lived user token for ``token``, short- or long-lived."""
    if not endpoints.meta_app_id or not endpoints.meta_app_secret:
        raise TokenRefused(
            "META_APP_ID and META_APP_SECRET are not set: Meta tokens are exchanged with the "
            "app's id and secret"
        )
    return await _graph_token(
        http,
        "Meta",
        f"{endpoints.meta_graph_url}/{endpoints.meta_api_version}/oauth/access_token",
        {
            "grant_type": "fb_exchange_token",
            "client_id": endpoints.meta_app_id,
            "client_secret": endpoints.meta_app_secret,
            "fb_exchange_token": token,
        },
    )


async def exchange_threads_token(
    http: httpx.AsyncClient, endpoints: TokenEndpoints, short_lived: str
) -> IssuedToken:
    """A long-lived Threads token (60 days) for a short-lived one (1 hour)."""
    if not endpoints.threads_app_secret:
        raise TokenRefused(
            "THREADS_APP_SECRET is not set: short-lived Threads tokens are exchanged with it"
        )
    return await _graph_token(
        http,
        "Threads",
        f"{endpoints.threads_url}/access_token",
        {
            "grant_type": "th_exchange_token",
            "client_secret": endpoints.threads_app_secret,
            "access_token": short_lived,
        },
    )


async def refresh_threads_token(
    http: httpx.AsyncClient, endpoints: TokenEndpoints, long_lived: str
) -> IssuedToken:
    """A new long-lived Threads token (60 days from now) for an unexpired one >= 24 h old."""
    return await _graph_token(
        http,
        "Threads",
        f"{endpoints.threads_url}/refresh_access_token",
        {"grant_type": "th_refresh_token", "access_token": long_lived},
    )


async def _graph_token(
    http: httpx.AsyncClient, vendor: str, url: str, params: dict[str, str]
) -> IssuedToken:
    """GET a Graph token endpoint (Meta's, Threads'): the token, or the typed error."""
    response = await _call(vendor, http.get(url, params=params))
    if response.status_code == 200:
        return _issued(_json(response), vendor)
    raise _graph_error(vendor, response)
