"""Hostile HTTP input to every ingress endpoint: each is refused with a clear 4xx, nothing
changes in the database or in Temporal, and the ingress keeps serving."""

from __future__ import annotations

import asyncio
import base64
import json
import string
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from activities import approval_tokens
from activities.approval_tokens import Purpose
from activities.higgsfield import webhook_token
from devstack.emulators.resend import sign_svix
from tests.conftest import create_database
from tests.harness import running_stack
from tests.security import (
    APPROVER,
    World,
    db_snapshot,
    json_body,
    looks_clean,
    signed_headers,
    waiting_world,
)

LIMIT = 64 * 1024
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
header_text = st.text(string.ascii_letters + string.digits + string.punctuation, max_size=80)
not_a_string = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2)
not_a_string_list = (
    st.none()
    | st.integers()
    | st.dictionaries(st.text(max_size=5), st.text(max_size=5), min_size=1)
    | st.lists(st.integers() | st.none(), min_size=1, max_size=3)
)


@pytest.fixture(scope="module")
async def world(
    pg_admin_url: str, template_url: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[World]:
    """One waiting job and one queued generation for every property of this module."""
    db_url = await create_database(pg_admin_url)
    queue = f"test-{uuid.uuid4()}"
    async with running_stack(
        db_url, temporal_env.client, queue, ingress_max_body_bytes=LIMIT
    ) as stack:
        found = await waiting_world(stack, db_url)
        yield found
        await found.job_handle.cancel()
        await found.generation_handle.cancel()


Send = Callable[[httpx.Client], httpx.Response]


async def refused_and_unchanged(world: World, prop: Callable[[], None]) -> None:
    """Run the property in a thread (the ingress serves on this loop); then check that the
    workflows still wait and the ingress is healthy."""
    await world.assert_still_waiting()
    await asyncio.to_thread(prop)
    await world.assert_still_waiting()
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{world.stack.ingress_url}/healthz")
    assert health.status_code == 200, health.text


def expect_refused(
    world: World,
    send: Send,
    allowed: range | tuple[int, ...] = range(400, 500),
    ignore: tuple[str, ...] = (),
) -> httpx.Response:
    """Send one request; it is refused (4xx unless told), cleanly, and changes nothing."""
    with world.connect() as conn, httpx.Client(base_url=world.stack.ingress_url) as http:
        before = db_snapshot(conn)
        response = send(http)
        after = db_snapshot(conn)
    assert response.status_code in allowed, (response.status_code, response.text)
    assert looks_clean(response.text), response.text
    for table in ignore:
        before.pop(table), after.pop(table)
    assert after == before
    return response


def _request(method: str, url: str, http: httpx.Client, **kwargs: Any) -> httpx.Response:
    return http.request(method, url, **kwargs)


# --- /webhooks/resend ---------------------------------------------------------------------


def _reply_event(world: World, **data: Any) -> dict[str, Any]:
    fields = {
        "email_id": str(uuid.uuid4()),
        "from": APPROVER,
        "to": world.request_email["reply_to"],
        "received_for": world.request_email["reply_to"],
        "subject": "Re: approval",
    }
    return {"type": "email.received", "created_at": "2026-01-01T00:00:00Z", "data": fields | data}


@st.composite
def bad_svix_headers(draw: st.DrawFn, body: str, secret: str) -> dict[str, str]:
    """Missing, garbage, wrongly keyed, stale, future or mismatched svix headers."""
    svix_id = f"msg_{uuid.uuid4().hex}"
    now = int(datetime.now(UTC).timestamp())
    kind = draw(st.sampled_from(["none", "garbage", "wrong_key", "stale", "future", "other_body"]))
    if kind == "none":
        return draw(st.dictionaries(st.sampled_from(["svix-id", "svix-timestamp"]), header_text))
    if kind == "garbage":
        text = header_text.filter(bool)
        return {"svix-id": draw(text), "svix-timestamp": draw(text), "svix-signature": draw(text)}
    key, ts, signed = secret, now, body
    if kind == "wrong_key":
        key = "whsec_" + base64.b64encode(draw(st.binary(min_size=16, max_size=32))).decode()
    elif kind == "stale":
        ts = now - draw(st.integers(min_value=301, max_value=10**7))
    elif kind == "future":
        ts = now + draw(st.integers(min_value=301, max_value=10**7))
    else:
        signed = body + draw(st.text(min_size=1, max_size=5))
    return {
        "svix-id": svix_id,
        "svix-timestamp": str(ts),
        "svix-signature": sign_svix(key, svix_id, ts, signed),
    }


async def test_unsigned_forged_and_stale_resend_webhooks_are_refused(world: World) -> None:
    @PROPERTY
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        body_kind = data.draw(st.sampled_from(["bytes", "json", "genuine"]))
        if body_kind == "bytes":
            raw: bytes = data.draw(st.binary(max_size=2048))
            text = raw.decode("utf-8", "replace")
        else:
            value = data.draw(json_values) if body_kind == "json" else _reply_event(world)
            text = json_body(value)
            raw = text.encode()
        headers = data.draw(bad_svix_headers(text, world.webhook_secret))
        response = expect_refused(
            world, lambda http: http.post("/webhooks/resend", content=raw, headers=headers)
        )
        assert response.json()["error"]

    await refused_and_unchanged(world, prop)


@st.composite
def malformed_events(draw: st.DrawFn, world: World) -> Any:
    """Correctly shaped JSON that is not a Resend event, or an event with wrongly typed data."""
    event = _reply_event(world)
    broken = draw(
        st.sampled_from(["not_object", "type", "no_data", "data", "email_id", "to", "received_for"])
    )
    if broken == "not_object":
        return draw(st.lists(json_values, max_size=3) | st.text() | st.integers())
    if broken == "type":
        event["type"] = draw(not_a_string)
    elif broken == "no_data":
        del event["data"]
    elif broken == "data":
        event["data"] = draw(not_a_string | st.text())
    elif broken == "email_id":
        event["data"]["email_id"] = draw(not_a_string)
    else:
        event["data"][broken] = draw(not_a_string_list)
    return event


async def test_signed_but_malformed_events_are_refused(world: World) -> None:
    @PROPERTY
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        text = json_body(data.draw(malformed_events(world)))
        headers = signed_headers(world.webhook_secret, text)
        response = expect_refused(
            world,
            lambda http: http.post("/webhooks/resend", content=text, headers=headers),
            allowed=(400,),
        )
        assert response.json()["error"]

    await refused_and_unchanged(world, prop)


@st.composite
def foreign_reply_addresses(draw: st.DrawFn, world: World) -> list[str]:
    """Recipients without a valid reply token for the waiting approval."""
    domain = world.stack.settings.inbound_email_domain
    approval_id = world.approval["id"]
    later = datetime.now(UTC) + timedelta(days=1)
    kind = draw(
        st.sampled_from(
            ["none", "random", "wrong_secret", "unknown_approval", "other_approver", "link"]
        )
    )
    if kind == "none":
        return draw(st.lists(st.emails(), max_size=3))
    if kind == "random":
        token = draw(st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=40, max_size=80))
    elif kind == "wrong_secret":
        token = approval_tokens.sign("not-the-secret", approval_id, APPROVER, Purpose.REPLY, later)
    elif kind == "unknown_approval":
        token = approval_tokens.sign(
            world.token_secret, uuid.uuid4(), APPROVER, Purpose.REPLY, later
        )
    elif kind == "other_approver":
        token = approval_tokens.sign(
            world.token_secret, approval_id, "mallory@example.com", Purpose.REPLY, later
        )
    else:
        token = world.links["Approve"].rsplit("/", 1)[1]
    return [approval_tokens.reply_address(token, domain)]


async def test_signed_events_about_unknown_emails_or_tokens_change_nothing(world: World) -> None:
    @PROPERTY
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        kind = data.draw(
            st.sampled_from(["email.received", "email.bounced", "email.complained", "x.y"])
        )
        to = data.draw(foreign_reply_addresses(world))
        event = _reply_event(world, to=to, received_for=to) | {"type": kind}
        text = json_body(event)
        headers = signed_headers(world.webhook_secret, text)
        response = expect_refused(
            world,
            lambda http: http.post("/webhooks/resend", content=text, headers=headers),
            allowed=(200,),
            ignore=("webhook_events",),
        )
        outcome = response.json()["outcome"]
        assert not outcome.startswith(("applied", "recorded")), outcome

    await refused_and_unchanged(world, prop)


async def test_reply_resend_does_not_know_is_refused_cleanly(world: World) -> None:
    """A genuine reply token in an event whose email Resend cannot return decides nothing."""

    def prop() -> None:
        text = json_body(_reply_event(world))  # a fresh email_id the emulator never stored
        headers = signed_headers(world.webhook_secret, text)
        response = expect_refused(
            world,
            lambda http: http.post("/webhooks/resend", content=text, headers=headers),
            allowed=(404,),
            ignore=("webhook_events",),
        )
        assert "applied" not in response.text

    await refused_and_unchanged(world, prop)


async def test_replayed_deliveries_change_nothing(world: World) -> None:
    event = {"type": "email.delivered", "data": {"email_id": world.request_email["id"]}}
    text = json_body(event)
    genuine = signed_headers(world.webhook_secret, text)
    async with httpx.AsyncClient(base_url=world.stack.ingress_url) as http:
        first = await http.post("/webhooks/resend", content=text, headers=genuine)
    assert first.json() == {"outcome": "ignored"}

    @PROPERTY
    @given(st.booleans(), json_values)
    def prop(same_body: bool, other: Any) -> None:
        body = text if same_body else json_body({"type": "email.bounced", "data": other})
        headers = dict(genuine)
        if not same_body:  # the same delivery id, re-signed over another body
            ts = int(genuine["svix-timestamp"])
            headers["svix-signature"] = sign_svix(
                world.webhook_secret, genuine["svix-id"], ts, body
            )
        response = expect_refused(
            world,
            lambda http: http.post("/webhooks/resend", content=body, headers=headers),
            allowed=(200, 400),
        )
        if response.status_code == 200:
            assert response.json()["duplicate"] is True

    await refused_and_unchanged(world, prop)


# --- /approvals/{token} -------------------------------------------------------------------


@st.composite
def bad_link_tokens(draw: st.DrawFn, world: World) -> str:
    """Random, mangled, wrongly signed, foreign, expired or reply tokens."""
    approve = world.links["Approve"].rsplit("/", 1)[1]
    approval_id = world.approval["id"]
    later = datetime.now(UTC) + timedelta(days=1)
    kind = draw(
        st.sampled_from(
            [
                *("random", "base32", "flip", "truncate", "extend", "reply", "wrong_secret"),
                *("other", "other_approver", "expired", "zero_expiry"),
            ]
        )
    )
    if kind == "random":
        return str(draw(st.text(string.ascii_letters + string.digits + "-_.~", min_size=1)))
    if kind == "base32":
        return str(draw(st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=1, max_size=120)))
    if kind == "flip":
        at = draw(st.integers(0, len(approve) - 1))
        char = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"))
        mangled = approve[:at] + char + approve[at + 1 :]
        assume(_decoded(mangled) != _decoded(approve))  # the last character has a spare bit
        return mangled
    if kind == "truncate":
        return approve[: draw(st.integers(1, len(approve) - 1))]
    if kind == "extend":
        return approve + draw(st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=1, max_size=8))
    if kind == "reply":
        return world.reply_token
    secret, who, when, target = world.token_secret, APPROVER, later, approval_id
    if kind == "wrong_secret":
        secret = "not-the-secret"
    elif kind == "other":
        target = uuid.uuid4()
    elif kind == "other_approver":
        who = "mallory@example.com"
    elif kind == "expired":
        when = datetime.now(UTC) - timedelta(seconds=draw(st.integers(1, 10**6)))
    else:
        when = datetime.fromtimestamp(0, UTC)
    purpose = draw(st.sampled_from([Purpose.APPROVE_LINK, Purpose.REJECT_LINK]))
    return approval_tokens.sign(secret, target, who, purpose, when)


def _decoded(token: str) -> bytes | None:
    try:
        return base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except ValueError:
        return None


async def test_forged_or_mangled_approval_links_are_refused(world: World) -> None:
    @PROPERTY
    @given(st.data(), st.sampled_from(["GET", "POST"]), st.text(max_size=3000))
    def prop(data: st.DataObject, method: str, note: str) -> None:
        token = data.draw(bad_link_tokens(world))
        form = {"note": note} if method == "POST" else None
        expect_refused(world, lambda http: http.request(method, f"/approvals/{token}", data=form))

    await refused_and_unchanged(world, prop)


async def test_other_methods_on_a_genuine_link_are_refused(world: World) -> None:
    def prop() -> None:
        url = world.links["Approve"]
        for method in ("PUT", "PATCH", "DELETE"):
            expect_refused(world, partial(_request, method, url), allowed=(405,))

    await refused_and_unchanged(world, prop)


# --- /webhooks/higgsfield/{generation_id} -------------------------------------------------


@st.composite
def bad_higgsfield_targets(draw: st.DrawFn, world: World) -> tuple[str, str, bytes]:
    """A path id, a query token and a body, at least one of which is wrong."""
    real_id = str(world.generation_id)
    real_token = webhook_token(world.hint_secret, world.generation_id)
    kind = draw(st.sampled_from(["token", "unknown_id", "not_uuid", "body"]))
    good_body = json_body({"request_id": "x", "status": "completed"}).encode()
    body = draw(st.sampled_from([good_body, b""]) | st.binary(max_size=512))
    if kind == "token":
        token = draw(st.text(string.ascii_letters + string.digits, max_size=40) | st.just(""))
        assume(token != real_token)
        return real_id, token, body
    if kind == "unknown_id":
        other = uuid.uuid4()
        token = draw(st.sampled_from([real_token, webhook_token("not-the-secret", other)]))
        return str(other), token, body
    if kind == "not_uuid":
        return draw(st.text(string.ascii_letters + "-_", min_size=1, max_size=40)), real_token, body
    bad = draw(
        st.binary(max_size=512)
        | json_values.map(lambda v: json_body(v).encode())
        | st.just(json_body({"request_id": "x"}).encode())
    )
    try:
        parsed = json.loads(bad)
        assume(not (isinstance(parsed, dict) and {"request_id", "status"} <= parsed.keys()))
    except (ValueError, UnicodeDecodeError):
        pass
    return real_id, real_token, bad


async def test_forged_higgsfield_webhooks_are_refused(world: World) -> None:
    @PROPERTY
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        gid, token, body = data.draw(bad_higgsfield_targets(world))
        response = expect_refused(
            world,
            lambda http: http.post(
                f"/webhooks/higgsfield/{gid}", params={"token": token}, content=body
            ),
        )
        assert response.json()["error"]

    await refused_and_unchanged(world, prop)


async def test_higgsfield_hint_about_another_request_changes_nothing(world: World) -> None:
    token = webhook_token(world.hint_secret, world.generation_id)

    @settings(PROPERTY, max_examples=15)
    @given(st.text(max_size=40), st.sampled_from(["completed", "failed", "nsfw", "queued", "?"]))
    def prop(request_id: str, status: str) -> None:
        body = json_body({"request_id": request_id, "status": status})
        expect_refused(
            world,
            lambda http: http.post(
                f"/webhooks/higgsfield/{world.generation_id}",
                params={"token": token},
                content=body,
            ),
            allowed=(200,),
        )

    await refused_and_unchanged(world, prop)


# --- oversized bodies ---------------------------------------------------------------------


def _endpoints(world: World) -> list[str]:
    token = webhook_token(world.hint_secret, world.generation_id)
    return [
        "/webhooks/resend",
        world.links["Approve"].removeprefix(world.stack.ingress_url),
        f"/webhooks/higgsfield/{world.generation_id}?token={token}",
    ]


async def test_oversized_bodies_with_content_length_are_refused_unread(world: World) -> None:
    def prop() -> None:
        body = b"note=" + b"x" * (LIMIT + 1)
        for path in _endpoints(world):
            response = expect_refused(
                world, partial(_request, "POST", path, content=body), allowed=(413,)
            )
            assert response.json() == {"error": "request body too large"}

    await refused_and_unchanged(world, prop)


async def test_streamed_oversized_bodies_are_cut_off_near_the_limit(world: World) -> None:
    """A 10 MB chunked body: the ingress stops reading just past the limit."""

    def prop() -> None:
        for path in _endpoints(world):
            yielded = 0

            def ten_megabytes() -> Iterator[bytes]:
                nonlocal yielded
                for _ in range(10 * 1024):
                    yielded += 1024
                    yield b"x" * 1024

            with world.connect() as conn, httpx.Client(base_url=world.stack.ingress_url) as http:
                before = db_snapshot(conn)
                try:
                    status: int | None = http.post(path, content=ten_megabytes()).status_code
                except httpx.TransportError:
                    status = None  # the ingress closed the connection after its 413
                assert db_snapshot(conn) == before
            assert status in (413, None), status
            assert yielded < LIMIT + 4 * 1024 * 1024, f"{path}: {yielded} bytes read"

    await refused_and_unchanged(world, prop)


async def test_oversized_chunked_body_gets_413_before_it_ends(world: World) -> None:
    """A chunked body that never ends: the 413 arrives once the limit is passed."""
    for path in _endpoints(world):
        port = world.stack.settings.ingress_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            chunk = b"x" * 4096
            for _ in range(LIMIT // len(chunk) + 2):  # past the limit, and no final chunk
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 413"), head
    await world.assert_still_waiting()
