"""Our Higgsfield client: the SDK's public parts, no SDK retries, the shared connections."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from higgsfield_client import Cancelled, Completed, HiggsfieldClientError, Queued
from starlette.applications import Starlette
from starlette.routing import Mount

from activities.higgsfield_client import HiggsfieldClient
from devstack.emulators.higgsfield import HiggsfieldEmulator
from devstack.emulators.runner import serve_in_thread

KEY = "hf-client-key:hf-client-secret"
APPLICATION = "higgsfield-ai/soul/standard"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[HiggsfieldEmulator, str]]:
    emulator = HiggsfieldEmulator(api_keys={KEY}, queue_s=0.0, run_s=0.0)
    server = serve_in_thread(Starlette(routes=[Mount("/higgsfield", app=emulator.app)]))
    yield emulator, f"{server.url}/higgsfield"
    server.stop()


@pytest.fixture
def emulator(served: tuple[HiggsfieldEmulator, str]) -> HiggsfieldEmulator:
    served[0].reset()
    return served[0]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 408])
async def test_a_refused_or_failed_submit_is_sent_once(
    emulator: HiggsfieldEmulator, served: tuple[HiggsfieldEmulator, str], status: int
) -> None:
    # The SDK's own client retries these three times; a retried submit could create a
    # second generation, so ours leaves every retry to Temporal.
    injected = emulator.faults.injected_count()  # counted since the emulator started
    emulator.faults.fail_next(3, status=status, path_prefix="/higgsfield-ai")
    async with httpx.AsyncClient() as shared:
        client = HiggsfieldClient(base_url=served[1], api_key=KEY, http=shared)
        with pytest.raises(HiggsfieldClientError) as failed:
            await client.submit(APPLICATION, {"prompt": "once"})
    assert emulator.faults.injected_count() == injected + 1
    assert emulator.submission_count() == 0
    cause = failed.value.__cause__
    assert isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == status


async def test_status_result_and_cancel_go_to_the_base_url_with_the_users_key(
    emulator: HiggsfieldEmulator, served: tuple[HiggsfieldEmulator, str]
) -> None:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as shared:
        client = HiggsfieldClient(base_url=served[1], api_key=KEY, http=shared)
        hook = "http://127.0.0.1:9/webhooks/higgsfield/g1?token=a&b=c"  # nobody listens
        done = await client.submit(APPLICATION, {"prompt": "a lake"}, webhook_url=hook)
        assert isinstance(await client.status(done.request_id), Completed)
        assert (await client.result(done.request_id))["request_id"] == done.request_id
        emulator.auto_advance = False  # the next one stays queued, so it can be cancelled
        queued = await client.submit(APPLICATION, {"prompt": "a forest"})
        assert isinstance(await client.status(queued.request_id), Queued)
        await client.cancel(queued.request_id)
        assert isinstance(await client.status(queued.request_id), Cancelled)
    [first, *_] = emulator.submissions()
    assert first["webhook_url"] == hook  # sent as the hf_webhook query parameter, encoded
    assert all(str(r.url).startswith(served[1] + "/") for r in sent), [str(r.url) for r in sent]
    assert {r.headers["authorization"] for r in sent} == {f"Key {KEY}"}
    assert shared.is_closed  # closed by its owner; the user's client never closed it
