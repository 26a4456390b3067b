"""Higgsfield, live: the refusals the emulator copies (free), then one real generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from higgsfield_client import Completed, Failed, HiggsfieldClientError

from activities.higgsfield_client import HiggsfieldClient, application_for
from tests.live.conftest import keys_for, real_url

pytestmark = pytest.mark.live
GENERATION_DEADLINE_S = 600


@pytest.fixture
async def higgsfield() -> AsyncIterator[HiggsfieldClient]:
    keys = keys_for("higgsfield")
    async with httpx.AsyncClient(timeout=60) as http:
        yield HiggsfieldClient(
            base_url=real_url("higgsfield_base_url"), api_key=keys["LIVE_HIGGSFIELD_KEY"], http=http
        )


@pytest.mark.parametrize(
    ("application", "arguments"),
    [
        ("higgsfield-ai/no-such-model", {"prompt": "x"}),  # the emulator: 404
        (application_for("soul"), {"prompt": "x", "batch_size": 2}),  # the emulator: 422
        (application_for("soul"), {"prompt": "x", "seed": None}),
    ],
)
async def test_higgsfield_refuses_what_the_emulator_refuses(
    higgsfield: HiggsfieldClient, application: str, arguments: dict[str, object]
) -> None:
    with pytest.raises(HiggsfieldClientError) as refused:
        await higgsfield.submit(application, arguments)
    cause = refused.value.__cause__
    assert isinstance(cause, httpx.HTTPStatusError)
    assert cause.response.status_code in (404, 422), cause.response.text


async def test_one_soul_generation_completes_with_an_image(higgsfield: HiggsfieldClient) -> None:
    arguments = {"prompt": "a small red cube on a white table", "resolution": "720p"}
    controller = await higgsfield.submit(application_for("soul"), arguments)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GENERATION_DEADLINE_S
    status = await higgsfield.status(controller.request_id)
    while not isinstance(status, Completed | Failed) and loop.time() < deadline:
        await asyncio.sleep(5)
        status = await higgsfield.status(controller.request_id)

    assert isinstance(status, Completed), f"the generation ended {type(status).__name__}"
    result = await higgsfield.result(controller.request_id)
    [image, *_] = result["images"]
    async with httpx.AsyncClient(timeout=60) as http:
        download = await http.get(image["url"])
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("image/")
