"""The Higgsfield SDK client, as this project needs it."""

from __future__ import annotations

from functools import cached_property

import httpx
from higgsfield_client import AsyncClient, AsyncRequestController
from higgsfield_client.http.client import DEFAULT_TIMEOUT, USER_AGENT
from higgsfield_client.http.retry import NoRetry
from higgsfield_client.http.transport import AsyncHttpTransport

# The endpoint id (the path after the host) of each model name a workflow may give, as
# Higgsfield's API reference names them (read 2026-12-03). Any other name is sent as a path
# as it is: a full endpoint id works, anything else is refused by Higgsfield (404).
APPLICATIONS = {
    "soul": "higgsfield-ai/soul/standard",
    "soul-2": "higgsfield-ai/soul/v2/standard",
    "soul-cinema": "higgsfield-ai/soul/cinema",
}


class HiggsfieldClient(AsyncClient):
    """``higgsfield_client.AsyncClient`` with three changes.

    - By-id calls (status, result, cancel) use ``base_url``: SDK 0.2 builds their URLs
      from a hard-coded host.
    - No SDK-level retries: a retried submit could create a second request, and
      Temporal's retry policy is the one retry mechanism.
    - Requests go out through ``http``, the worker's shared client (its connection pool,
      and proxies from the environment): the SDK's own opens a new connection pool and
      TLS context per client, and calls are made with each user's key (measured: ~45 %
      of a worker's CPU while generations ran).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout)
        self._shared = _Through(http)

    @cached_property
    def _client(self) -> httpx.AsyncClient:
        # The SDK's headers, this user's key, the shared connections.
        return httpx.AsyncClient(
            headers={
                "Authorization": f"Key {self.api_key}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=self.timeout,
            base_url=self.base_url,
            transport=self._shared,
        )

    @cached_property
    def _transport(self) -> AsyncHttpTransport:
        return AsyncHttpTransport(self._client, NoRetry())

    def get_request_controller(self, request_id: str) -> AsyncRequestController:
        """A controller whose URLs are under ``base_url``."""
        urls = AsyncRequestController.build_urls(self.base_url, request_id)
        return AsyncRequestController(request_id, self._transport, **urls)


class _Through(httpx.AsyncBaseTransport):
    """Send each request, already built with this user's headers and timeout, through a
    shared client: its pool and its proxy mounts."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        """The shared client outlives this user's: it is closed by its owner."""


def application_for(model: str) -> str:
    """The Higgsfield application path of a model name."""
    return APPLICATIONS.get(model, model)
