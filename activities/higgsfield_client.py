"""The Higgsfield SDK's client, as this project needs it."""

from __future__ import annotations

import httpx
from higgsfield_client import AsyncRequestController, Status
from higgsfield_client.http.client import DEFAULT_TIMEOUT, USER_AGENT
from higgsfield_client.http.retry import NoRetry
from higgsfield_client.http.transport import AsyncHttpTransport
from higgsfield_client.types_ import AnyJSON
from higgsfield_client.utils import get_url

# The endpoint id (the path after the host) of each model name a workflow may give, as
# Higgsfield's API reference names them (read 2026-12-03). Any other name is sent as a path
# as it is: a full endpoint id works, anything else is refused by Higgsfield (404).
APPLICATIONS = {
    "soul": "higgsfield-ai/soul/standard",
    "soul-2": "higgsfield-ai/soul/v2/standard",
    "soul-cinema": "higgsfield-ai/soul/cinema",
}


class HiggsfieldClient:
    """``submit``, ``status``, ``result`` and ``cancel`` as ``higgsfield_client.AsyncClient``
    has them, built from the SDK's public parts (its transport, retry strategies and
    request controller) instead of ``AsyncClient``, whose HTTP client and retries are
    private attributes:

    - no SDK-level retries (``NoRetry``): a retried submit could create a second request,
      and Temporal's retry policy is the one retry mechanism;
    - requests go out through ``http``, the worker's shared client (its connection pool,
      and proxies from the environment): ``AsyncClient`` opens a new connection pool and
      TLS context per client, and calls are made with each user's key (measured: ~45 % of
      a worker's CPU while generations ran);
    - by-id calls (status, result, cancel) use ``base_url``: SDK 0.2 builds their URLs
      from a hard-coded host.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        # The SDK's headers, this user's key, the shared connections.
        self.http_client = httpx.AsyncClient(
            headers={
                "Authorization": f"Key {api_key}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=timeout,
            base_url=base_url,
            transport=_Through(http),
        )
        self.transport = AsyncHttpTransport(self.http_client, NoRetry())

    async def submit(
        self, application: str, arguments: AnyJSON, *, webhook_url: str | None = None
    ) -> AsyncRequestController:
        """Send one generation request (as ``AsyncClient.submit``); its controller."""
        response = await self.transport.request(
            "POST", get_url(application, webhook_url), json=arguments, timeout=self.timeout
        )
        data = response.json()
        return AsyncRequestController(
            request_id=data["request_id"],
            response_url=data["status_url"],
            status_url=data["status_url"],
            cancel_url=data["cancel_url"],
            transport=self.transport,
        )

    def get_request_controller(self, request_id: str) -> AsyncRequestController:
        """A controller of ``request_id`` whose URLs are under ``base_url``."""
        urls = AsyncRequestController.build_urls(self.base_url, request_id)
        return AsyncRequestController(request_id, self.transport, **urls)

    async def status(self, request_id: str) -> Status:
        """The request's current status."""
        return await self.get_request_controller(request_id).status()

    async def result(self, request_id: str) -> AnyJSON:
        """The request's result, once it is done (the SDK polls until then)."""
        return await self.get_request_controller(request_id).get()

    async def cancel(self, request_id: str) -> None:
        """Cancel a queued request (Higgsfield refuses once it has started)."""
        await self.get_request_controller(request_id).cancel()


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
