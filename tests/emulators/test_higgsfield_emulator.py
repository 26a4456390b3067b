"""The Higgsfield emulator, driven through the official ``higgsfield-client`` SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from higgsfield_client import (
    NSFW,
    AsyncClient,
    AsyncRequestController,
    Cancelled,
    Completed,
    Failed,
    HiggsfieldClientError,
    InProgress,
    Queued,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from activities.higgsfield_client import HiggsfieldClient
from devstack.emulators.higgsfield import HiggsfieldEmulator
from devstack.emulators.runner import ThreadedServer, serve_in_thread

CREDENTIAL = "hf-test-key:hf-test-secret"
APPLICATION = "higgsfield-ai/soul/standard"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeClock:
    """A monotonic clock the test moves by hand, so progression needs no real sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BaseUrlAsyncClient(AsyncClient):
    """The SDK builds by-id status/cancel URLs from a hard-coded host; use ``base_url``."""

    def get_request_controller(self, request_id: str) -> AsyncRequestController:
        urls = AsyncRequestController.build_urls(self.base_url, request_id)
        return AsyncRequestController(request_id, self._transport, **urls)


class Receiver:
    """A webhook endpoint that records every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

        async def hook(request: Request) -> Response:
            self.bodies.append(await request.json())
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])


CLOCK = FakeClock()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[HiggsfieldEmulator, str]]:
    emulator = HiggsfieldEmulator(api_keys={CREDENTIAL}, queue_s=0.2, run_s=0.3, clock=CLOCK)
    server = serve_in_thread(Starlette(routes=[Mount("/higgsfield", app=emulator.app)]))
    yield emulator, f"{server.url}/higgsfield"
    server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, ThreadedServer]]:
    hooks = Receiver()
    server = serve_in_thread(hooks.app)
    yield hooks, server
    server.stop()


@pytest.fixture
def emulator(served: tuple[HiggsfieldEmulator, str]) -> HiggsfieldEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
def hooks(receiver: tuple[Receiver, ThreadedServer]) -> Receiver:
    receiver[0].bodies.clear()
    return receiver[0]


@pytest.fixture
def hook_url(receiver: tuple[Receiver, ThreadedServer]) -> str:
    return f"{receiver[1].url}/hook"


@pytest.fixture
def client(served: tuple[HiggsfieldEmulator, str]) -> BaseUrlAsyncClient:
    return BaseUrlAsyncClient(base_url=served[1], api_key=CREDENTIAL)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition another thread makes true (webhooks are sent in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_generation_moves_with_time_and_its_images_download(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient
) -> None:
    controller = await client.submit(APPLICATION, {"prompt": "a lake", "resolution": "1080p"})
    request_id = controller.request_id

    assert isinstance(await client.status(request_id), Queued)
    CLOCK.now += 0.2
    assert isinstance(await controller.status(), InProgress)
    CLOCK.now += 0.3
    assert isinstance(await client.status(request_id), Completed)

    result = await client.result(request_id)
    assert result["status"] == "completed"
    assert result["request_id"] == request_id
    assert result["status_url"].endswith(f"/higgsfield/requests/{request_id}/status")
    [image] = result["images"]
    async with httpx.AsyncClient() as http:
        download = await http.get(image["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.content.startswith(PNG_MAGIC)
    assert emulator.submission_count() == 1
    [submission] = emulator.submissions()
    assert submission["identity"] == "hf-test-key"
    assert submission["application"] == APPLICATION
    assert submission["arguments"] == {"prompt": "a lake", "resolution": "1080p"}


async def test_slow_outcome_stays_in_progress_longer(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient
) -> None:
    slow = await client.submit(APPLICATION, {"prompt": "[slow] a mountain"})
    quick = await client.submit(APPLICATION, {"prompt": "a mountain"})
    CLOCK.now += 1.0

    assert isinstance(await quick.status(), Completed)
    assert isinstance(await slow.status(), InProgress)
    CLOCK.now += 3.0
    assert isinstance(await slow.status(), Completed)


async def test_cancel_is_accepted_while_queued_and_refused_once_in_progress(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient
) -> None:
    emulator.auto_advance = False
    queued = await client.submit(APPLICATION, {"prompt": "first"})
    started = await client.submit(APPLICATION, {"prompt": "second"})
    emulator.advance(started.request_id, "in_progress")

    await client.cancel(queued.request_id)
    assert isinstance(await client.status(queued.request_id), Cancelled)
    with pytest.raises(HiggsfieldClientError, match="cannot be canceled"):
        await started.cancel()
    assert isinstance(await started.status(), InProgress)


@pytest.mark.parametrize(
    ("prompt", "copies"),
    [("a beach", 1), ("a beach [webhook_duplicated]", 2), ("a beach [webhook_lost]", 0)],
)
async def test_webhook_on_completion_is_sent_once_twice_or_never(
    emulator: HiggsfieldEmulator,
    client: BaseUrlAsyncClient,
    hooks: Receiver,
    hook_url: str,
    prompt: str,
    copies: int,
) -> None:
    emulator.auto_advance = False
    controller = await client.submit(APPLICATION, {"prompt": prompt}, webhook_url=hook_url)
    assert emulator.submissions()[0]["webhook_url"] == hook_url

    emulator.advance(controller.request_id)
    assert emulator.advance(controller.request_id) == "completed"

    await eventually(lambda: len(emulator.deliveries()) == max(copies, 1))
    assert len(hooks.bodies) == copies
    assert sum(d["delivered"] for d in emulator.deliveries()) == copies
    for body in hooks.bodies:
        assert body["status"] == "completed"
        assert body["request_id"] == controller.request_id
        assert body["images"][0]["url"].endswith(f"/{controller.request_id}/0.png")
        assert {"status_url", "cancel_url"} <= body.keys()
    assert isinstance(await controller.status(), Completed)


async def test_failed_and_nsfw_outcomes_reach_their_status_and_webhook(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient, hooks: Receiver, hook_url: str
) -> None:
    emulator.auto_advance = False
    emulator.set_outcome("failed", for_prompt_contains="broken")
    failed = await client.submit(APPLICATION, {"prompt": "a broken car"}, webhook_url=hook_url)
    nsfw = await client.submit(APPLICATION, {"prompt": "[nsfw] x"}, webhook_url=hook_url)
    for request_id in (failed.request_id, nsfw.request_id):
        emulator.advance(request_id)
        emulator.advance(request_id)

    assert isinstance(await failed.status(), Failed)
    assert isinstance(await nsfw.status(), NSFW)
    await eventually(lambda: len(hooks.bodies) == 2)
    by_status = {body["status"]: body for body in hooks.bodies}
    assert by_status["failed"]["request_id"] == failed.request_id
    assert by_status["failed"]["error"]
    assert by_status["nsfw"] == {"status": "nsfw", "request_id": nsfw.request_id}


async def test_default_outcome_applies_to_every_prompt(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient
) -> None:
    emulator.set_outcome("failed")
    controller = await client.submit(APPLICATION, {"prompt": "anything"})
    CLOCK.now += 1.0
    assert isinstance(await controller.status(), Failed)
    with pytest.raises(ValueError, match="unknown outcome"):
        emulator.set_outcome("exploded")


async def test_requests_without_valid_credentials_are_refused(
    emulator: HiggsfieldEmulator, served: tuple[HiggsfieldEmulator, str]
) -> None:
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(f"{served[1]}/{APPLICATION}", json={"prompt": "x"})
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"]

    wrong = BaseUrlAsyncClient(base_url=served[1], api_key="hf-test-key:wrong")
    with pytest.raises(HiggsfieldClientError, match="credentials"):
        await wrong.submit(APPLICATION, {"prompt": "x"})
    assert emulator.submission_count() == 0


async def test_injected_503_is_retried_by_the_sdk(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient
) -> None:
    emulator.faults.fail_next(1, status=503, path_prefix="/higgsfield-ai")

    controller = await client.submit(APPLICATION, {"prompt": "retry me"})

    assert emulator.faults.injected_count() == 1
    assert emulator.submission_count() == 1
    assert isinstance(await controller.status(), Queued)


async def test_webhook_is_sent_when_time_alone_finishes_the_generation(
    hooks: Receiver, hook_url: str
) -> None:
    emulator = HiggsfieldEmulator(queue_s=0.01, run_s=0.02)  # the real clock; nobody polls
    server = serve_in_thread(emulator.app)
    try:
        client = BaseUrlAsyncClient(base_url=server.url, api_key=CREDENTIAL)
        controller = await client.submit(APPLICATION, {"prompt": "x"}, webhook_url=hook_url)
        await eventually(lambda: len(hooks.bodies) == 1)
    finally:
        server.stop()
    assert hooks.bodies[0]["request_id"] == controller.request_id
    assert hooks.bodies[0]["status"] == "completed"


async def test_our_client_sends_each_users_key_through_the_shared_http_client(
    emulator: HiggsfieldEmulator, served: tuple[HiggsfieldEmulator, str]
) -> None:
    # Every user's client goes out through the worker's one httpx client (its connection
    # pool and its proxies from the environment), each with the user's own key.
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as shared:
        ours = HiggsfieldClient(base_url=served[1], api_key=CREDENTIAL, http=shared)
        other = HiggsfieldClient(base_url=served[1], api_key="wrong:key", http=shared)
        controller = await ours.submit(APPLICATION, {"prompt": "through the shared client"})
        assert isinstance(await ours.status(controller.request_id), Queued | InProgress)
        with pytest.raises(HiggsfieldClientError):
            await other.status(controller.request_id)
        await ours.http_client.aclose()  # a user's client closing leaves the shared one open
        again = HiggsfieldClient(base_url=served[1], api_key=CREDENTIAL, http=shared)
        assert isinstance(await again.status(controller.request_id), Queued | InProgress)
    keys = [r.headers["authorization"] for r in sent]
    assert keys == [f"Key {CREDENTIAL}"] * 2 + ["Key wrong:key", f"Key {CREDENTIAL}"]


# -- strictness: paths and arguments Higgsfield refuses ----------------------------------


@pytest.mark.parametrize(
    "application",
    [
        "soul",  # a model name is not an endpoint id
        "higgsfield-ai/soul",
        "higgsfield-ai/soul/standard/extra",
        "bytedance/seedream/v4/text-to-image",  # not in the emulated catalogue
        "HIGGSFIELD-AI/SOUL/STANDARD",
    ],
)
async def test_a_path_that_is_not_a_model_endpoint_is_not_found(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient, application: str
) -> None:
    with pytest.raises(HiggsfieldClientError, match="Not Found"):
        await client.submit(application, {"prompt": "x"})
    assert emulator.submission_count() == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": 7}, "prompt"),
        ({"prompt": "x", "aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"prompt": "x", "aspect_ratio": "1:1 "}, "aspect_ratio"),
        ({"prompt": "x", "resolution": "2K"}, "resolution"),
        ({"prompt": "x", "resolution": "1080"}, "resolution"),
        ({"prompt": "x", "batch_size": 2}, "batch_size"),
        ({"prompt": "x", "batch_size": True}, "batch_size"),
        ({"prompt": "x", "batch_size": "4"}, "batch_size"),
        ({"prompt": "x", "seed": None}, "seed"),  # explicit null is invalid
        ({"prompt": "x", "seed": 0}, "seed"),
        ({"prompt": "x", "seed": 1_000_001}, "seed"),
        ({"prompt": "x", "seed": 1.5}, "seed"),
        ({"prompt": "x", "enhance_prompt": "yes"}, "enhance_prompt"),
        ({"prompt": "x", "style_strength": 1.5}, "style_strength"),
        ({"prompt": "x", "style_id": ""}, "style_id"),
    ],
)
async def test_invalid_arguments_are_refused_with_fastapi_details(
    emulator: HiggsfieldEmulator,
    served: tuple[HiggsfieldEmulator, str],
    arguments: dict[str, Any],
    field: str,
) -> None:
    headers = {"Authorization": f"Key {CREDENTIAL}"}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{served[1]}/{APPLICATION}", json=arguments, headers=headers)

    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert emulator.submission_count() == 0


async def test_documented_arguments_are_accepted_and_batch_size_sets_the_images(
    emulator: HiggsfieldEmulator, client: BaseUrlAsyncClient
) -> None:
    arguments = {
        "prompt": "a beach",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "enhance_prompt": False,
        "batch_size": 4,
        "seed": 1_000_000,
        "style_strength": 1,
        "unknown_option": "ignored, as the reference says of style_id on SOUL Cinema",
    }
    controller = await client.submit(APPLICATION, arguments)
    emulator.advance(controller.request_id, "completed")

    result = await client.result(controller.request_id)
    assert len(result["images"]) == 4


def test_every_model_name_maps_to_an_emulated_endpoint() -> None:
    from activities.higgsfield_client import APPLICATIONS, application_for
    from devstack.emulators.higgsfield import APPLICATIONS as SERVED

    assert set(APPLICATIONS.values()) <= SERVED
    assert application_for("soul") == "higgsfield-ai/soul/standard"
    assert application_for("higgsfield-ai/soul/cinema") == "higgsfield-ai/soul/cinema"
