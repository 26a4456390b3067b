"""The Higgsfield SDK client, as this project needs it."""

from __future__ import annotations

from functools import cached_property

from higgsfield_client import AsyncClient, AsyncRequestController
from higgsfield_client.http.retry import NoRetry
from higgsfield_client.http.transport import AsyncHttpTransport

# Our application path for each model name the API exposes; others are used as paths.
APPLICATIONS = {"soul": "higgsfield-ai/soul/standard"}


class HiggsfieldClient(AsyncClient):
    """``higgsfield_client.AsyncClient`` with two changes.

    - By-id calls (status, result, cancel) use ``base_url``: SDK 0.2 builds their URLs
      from a hard-coded host.
    - No SDK-level retries: a retried submit could create a second request, and
      Temporal's retry policy is the one retry mechanism.
    """

    @cached_property
    def _transport(self) -> AsyncHttpTransport:
        return AsyncHttpTransport(self._client, NoRetry())

    def get_request_controller(self, request_id: str) -> AsyncRequestController:
        """A controller whose URLs are under ``base_url``."""
        urls = AsyncRequestController.build_urls(self.base_url, request_id)
        return AsyncRequestController(request_id, self._transport, **urls)

    async def aclose(self) -> None:
        """Close the HTTP connections the client opened."""
        if "_client" in self.__dict__:
            await self._client.aclose()


def application_for(model: str) -> str:
    """The Higgsfield application path of a model name."""
    return APPLICATIONS.get(model, model)
