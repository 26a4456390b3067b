"""The Steel emulator, driven through the official ``steel-sdk``."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import httpx
import pytest
from steel import (
    AsyncSteel,
    AuthenticationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    Steel,
)

from emulators.runner import ThreadedServer, serve_in_thread
from emulators.steel import SteelEmulator

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeClock:
    """A monotonic clock the test moves by hand, so expiry needs no real sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLOCK = FakeClock()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SteelEmulator, ThreadedServer]]:
    emulator = SteelEmulator(api_key="steel_test_key", clock=CLOCK)
    server = serve_in_thread(emulator.app)
    yield emulator, server
    server.stop()


@pytest.fixture
def emulator(served: tuple[SteelEmulator, ThreadedServer]) -> SteelEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
def client(served: tuple[SteelEmulator, ThreadedServer]) -> AsyncSteel:
    return AsyncSteel(steel_api_key="steel_test_key", base_url=served[1].url, max_retries=0)


async def test_create_act_screenshot_release(emulator: SteelEmulator, client: AsyncSteel) -> None:
    session_id = str(uuid.uuid4())
    session = await client.sessions.create(session_id=session_id, api_timeout=600_000)
    assert (session.id, session.status, session.timeout) == (session_id, "live", 600_000)
    assert session.session_viewer_url.endswith(f"/v1/sessions/{session_id}/player")

    first = await client.sessions.computer(session_id, action="take_screenshot")
    await client.sessions.computer(session_id, action="click_mouse", coordinates=[10, 20])
    typed = await client.sessions.computer(
        session_id, action="type_text", text="hello", screenshot=True
    )
    await client.sessions.computer(session_id, action="press_key", keys=["Enter"])
    position = await client.sessions.computer(session_id, action="get_cursor_position")

    assert first.base64_image and typed.base64_image
    assert base64.b64decode(first.base64_image).startswith(PNG_MAGIC)
    assert first.base64_image != typed.base64_image  # the screen changes as actions happen
    assert position.output == "X=10,Y=20"
    assert [a["action"] for a in emulator.actions(session_id)] == [
        "take_screenshot",
        "click_mouse",
        "type_text",
        "press_key",
        "get_cursor_position",
    ]

    released = await client.sessions.release(session_id)
    again = await client.sessions.release(session_id)
    assert released.success and again.success and "already released" in again.message
    assert (await client.sessions.retrieve(session_id)).release_reason == "user_requested"
    assert emulator.released_ids() == [session_id]


async def test_actions_on_released_or_expired_sessions_are_404(
    emulator: SteelEmulator, client: AsyncSteel
) -> None:
    session = await client.sessions.create()
    emulator.expire_session(session.id)
    assert (await client.sessions.retrieve(session.id)).status == "released"
    with pytest.raises(NotFoundError):
        await client.sessions.computer(session.id, action="take_screenshot")
    with pytest.raises(NotFoundError):
        await client.sessions.retrieve(str(uuid.uuid4()))


async def test_sessions_expire_after_their_timeout(
    emulator: SteelEmulator, client: AsyncSteel
) -> None:
    session = await client.sessions.create(api_timeout=60_000)
    CLOCK.now += 59.9
    assert (await client.sessions.retrieve(session.id)).status == "live"
    CLOCK.now += 0.1
    retrieved = await client.sessions.retrieve(session.id)
    assert (retrieved.status, retrieved.release_reason) == ("released", "timeout")


async def test_duplicate_session_id_is_409_without_retries(
    emulator: SteelEmulator, served: tuple[SteelEmulator, ThreadedServer]
) -> None:
    retrying = AsyncSteel(steel_api_key="steel_test_key", base_url=served[1].url)
    session_id = str(uuid.uuid4())
    await retrying.sessions.create(session_id=session_id)
    with pytest.raises(ConflictError):
        await retrying.sessions.create(session_id=session_id)
    assert emulator.created_count() == 1


def test_sync_client_lists_sessions_and_needs_the_key(
    emulator: SteelEmulator, served: tuple[SteelEmulator, ThreadedServer]
) -> None:
    client = Steel(steel_api_key="steel_test_key", base_url=served[1].url, max_retries=0)
    created = {client.sessions.create().id for _ in range(3)}
    assert {s.id for s in client.sessions.list(limit=2)} == created  # pages through all
    with pytest.raises(AuthenticationError):
        Steel(steel_api_key="wrong", base_url=served[1].url).sessions.list()


async def test_faults_make_steel_fail_then_recover(
    emulator: SteelEmulator, client: AsyncSteel, served: tuple[SteelEmulator, ThreadedServer]
) -> None:
    emulator.faults.fail_next(1, status=503)
    with pytest.raises(InternalServerError):
        await client.sessions.create()
    async with httpx.AsyncClient(base_url=served[1].url) as control:
        await control.post("/_emulator/faults", json={"error_rate": 1.0})
    with pytest.raises(InternalServerError):
        await client.sessions.create()
    emulator.faults.error_rate = 0.0
    assert (await client.sessions.create()).status == "live"
    assert emulator.created_count() == 1
    async with httpx.AsyncClient(base_url=served[1].url) as control:
        state = (await control.get("/_emulator/sessions")).json()
    assert state["created_count"] == 1
