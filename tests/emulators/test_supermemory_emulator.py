"""The Supermemory emulator, driven through the official ``supermemory`` SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from supermemory import AsyncSupermemory
from supermemory.core.api_error import ApiError

from devstack.emulators.runner import ThreadedServer, serve_in_thread
from devstack.emulators.supermemory import SupermemoryEmulator


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SupermemoryEmulator, ThreadedServer]]:
    emulator = SupermemoryEmulator(api_key="sm_test_key")
    server = serve_in_thread(emulator.app)
    yield emulator, server
    server.stop()


@pytest.fixture
def emulator(served: tuple[SupermemoryEmulator, ThreadedServer]) -> SupermemoryEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
def client(served: tuple[SupermemoryEmulator, ThreadedServer]) -> AsyncSupermemory:
    return AsyncSupermemory(api_key="sm_test_key", base_url=served[1].url, max_retries=0)


async def test_search_finds_memories_of_the_same_namespace_only(
    emulator: SupermemoryEmulator, client: AsyncSupermemory
) -> None:
    added = await client.add(
        "client-acme",
        content="Acme prefers blue banners and short headlines",
        metadata={"job": "job-1"},
    )
    await client.add("client-acme", content="Acme invoices are due in 30 days")
    await client.add("client-other", content="Other prefers blue banners too")
    assert added.status == "queued"

    found = await client.search("client-acme", query="Which banners does Acme prefer?")
    assert [r.memory for r in found.results] == [
        "Acme prefers blue banners and short headlines",  # shares "banners" and "acme"
        "Acme invoices are due in 30 days",  # shares only "acme"
    ]
    assert found.results[0].metadata == {"job": "job-1"}
    assert 0 < found.results[0].similarity <= 1
    assert len(emulator.memories("client-acme")) == 2
    assert len(emulator.memories(container_tag="client-other")) == 1


async def test_reusing_a_document_id_appends_and_duplicates_are_done(
    emulator: SupermemoryEmulator, client: AsyncSupermemory
) -> None:
    await client.add("ns", id="brief", content="Campaign launches in May")
    again = await client.add("ns", id="brief", content="Campaign launches in May")
    more = await client.add("ns", id="brief", content="Budget is 5000 euros")
    assert (again.status, more.status) == ("done", "queued")
    document = await client.documents.get("ns", "brief")
    assert document.content == "Campaign launches in May\n\nBudget is 5000 euros"


async def test_supermemory_down_raises_and_wrong_key_is_401(
    emulator: SupermemoryEmulator,
    client: AsyncSupermemory,
    served: tuple[SupermemoryEmulator, ThreadedServer],
) -> None:
    emulator.faults.error_rate = 1.0
    with pytest.raises(ApiError) as down:
        await client.search("ns", query="anything")
    assert down.value.status_code == 503
    emulator.faults.error_rate = 0.0
    emulator.faults.fail_next(1, path_prefix="/ns/ns/document")
    with pytest.raises(ApiError):
        await client.add("ns", content="lost")
    assert (await client.add("ns", content="kept")).status == "queued"
    assert [m["content"] for m in emulator.memories("ns")] == ["kept"]
    stranger = AsyncSupermemory(api_key="wrong", base_url=served[1].url, max_retries=0)
    with pytest.raises(ApiError) as unauthorized:
        await stranger.search("ns", query="kept")
    assert unauthorized.value.status_code == 401


async def test_latency_slows_every_api_request(
    emulator: SupermemoryEmulator, client: AsyncSupermemory
) -> None:
    emulator.faults.latency_s = 0.2
    started = time.monotonic()
    await client.search("ns", query="anything")
    assert time.monotonic() - started >= 0.2
