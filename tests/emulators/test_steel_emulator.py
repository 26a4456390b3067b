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

from devstack.emulators.runner import ThreadedServer, serve_in_thread
from devstack.emulators.steel import SteelEmulator

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


# -- navigation: the address bar, live details, and the browser activity that checks them --


async def test_the_address_bar_loads_a_url_and_live_details_report_it(
    emulator: SteelEmulator, client: AsyncSteel
) -> None:
    session = await client.sessions.create()
    blank = await client.sessions.live_details(session.id)
    assert [p.url for p in blank.pages] == ["about:blank"]

    await client.sessions.computer(session.id, action="press_key", keys=["Control", "l"])
    await client.sessions.computer(session.id, action="type_text", text="https://example.com/a")
    await client.sessions.computer(session.id, action="press_key", keys=["Enter"])

    details = await client.sessions.live_details(session.id)
    assert [p.url for p in details.pages] == ["https://example.com/a"]
    assert details.session_viewer_url.endswith(f"/v1/sessions/{session.id}/player")


@pytest.mark.parametrize(
    "keys",
    [
        [["Enter"]],  # typed into the page, no address bar focused
        [["Control", "l"], ["Escape"]],  # focus left the address bar before Enter
        [["Control", "k"]],
    ],
)
async def test_keys_that_do_not_focus_the_address_bar_load_nothing(
    emulator: SteelEmulator, client: AsyncSteel, keys: list[list[str]]
) -> None:
    session = await client.sessions.create()
    for combo in keys[:-1]:
        await client.sessions.computer(session.id, action="press_key", keys=combo)
    await client.sessions.computer(session.id, action="type_text", text="https://example.com")
    for combo in keys[-1:]:
        await client.sessions.computer(session.id, action="press_key", keys=combo)
    await client.sessions.computer(session.id, action="press_key", keys=["Enter"])

    details = await client.sessions.live_details(session.id)
    assert [p.url for p in details.pages] == ["about:blank"]


async def test_live_details_of_a_released_or_unknown_session_are_refused(
    emulator: SteelEmulator, client: AsyncSteel
) -> None:
    session = await client.sessions.create()
    await client.sessions.release(session.id)
    with pytest.raises(NotFoundError):
        await client.sessions.live_details(session.id)
    with pytest.raises(NotFoundError):
        await client.sessions.live_details(str(uuid.uuid4()))


async def test_navigation_reports_the_page_it_reached(
    emulator: SteelEmulator, client: AsyncSteel
) -> None:
    from activities.browser import BrowserActivities

    session = await client.sessions.create()
    browser = BrowserActivities(None, client)  # type: ignore[arg-type]  # navigation needs no db

    output, image = await browser._navigate(session.id, "https://notion.so/specs")

    assert output == "Navigated to https://notion.so/specs"
    assert image is not None and image.startswith(PNG_MAGIC)
    actions = [a["action"] for a in emulator.actions(session.id)]
    assert actions == ["press_key", "type_text", "press_key", "take_screenshot"]


async def test_navigation_without_an_address_bar_fails_instead_of_pretending(
    emulator: SteelEmulator, client: AsyncSteel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from temporalio.exceptions import ApplicationError

    from activities import browser as browser_module

    monkeypatch.setattr(browser_module, "NAVIGATION_CHECK_INTERVAL", 0.0)
    emulator.address_bar = False  # a kiosk-mode browser: the keys go to the page
    session = await client.sessions.create()
    browser = browser_module.BrowserActivities(None, client)  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as failed:
        await browser._navigate(session.id, "https://notion.so/specs")

    assert failed.value.type == "BrowserNavigationFailed"
    assert "did not happen" in str(failed.value)
    assert "about:blank" in str(failed.value)


N = "https://notion.so/a"


@pytest.mark.parametrize(
    ("target", "before", "after", "reached"),
    [
        (N, ["about:blank"], [N], N),
        ("https://notion.so", ["about:blank"], ["https://notion.so/"], "https://notion.so/"),
        ("https://Notion.so/a", ["about:blank"], [N], N),
        # a redirect (a sign-in page) is a navigation that happened
        (N, ["about:blank"], ["https://login.notion.so/x"], "https://login.notion.so/x"),
        (N, ["about:blank"], ["about:blank"], None),
        (N, ["https://x.test/"], ["https://x.test/"], None),
        (N, ["about:blank"], [], None),
        (N, ["about:blank"], ["chrome-error://chromewebdata/"], None),
        (N, [N], [N], N),  # already there: reaching it again is fine
    ],
)
def test_what_counts_as_a_navigation_that_happened(
    target: str, before: list[str], after: list[str], reached: str | None
) -> None:
    from activities.browser import _reached

    assert _reached(target, before, after) == reached
