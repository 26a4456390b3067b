"""The Resend emulator, driven through the official ``resend`` SDK."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import resend
from resend.exceptions import ResendError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.emulators.resend import ResendEmulator
from devstack.emulators.runner import ThreadedServer, serve_in_thread

SECRET = "whsec_" + base64.b64encode(b"emulator-test-secret-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-secret-0123456789abcd").decode()


class WebhookReceiver:
    """A tiny app that verifies each webhook with ``resend.Webhooks.verify``, like production."""

    def __init__(self) -> None:
        self.verified: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/webhooks/resend", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> JSONResponse:
        payload = (await request.body()).decode()
        headers = {
            "id": request.headers.get("svix-id", ""),
            "timestamp": request.headers.get("svix-timestamp", ""),
            "signature": request.headers.get("svix-signature", ""),
        }
        try:
            resend.Webhooks.verify(
                {"payload": payload, "headers": headers, "webhook_secret": SECRET}  # type: ignore[typeddict-item]
            )
        except ValueError as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return JSONResponse({"error": "bad signature"}, status_code=400)
        with self.lock:
            self.verified.append(json.loads(payload))
        return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[WebhookReceiver, ThreadedServer]]:
    app = WebhookReceiver()
    server = serve_in_thread(app.app)
    yield app, server
    server.stop()


@pytest.fixture(scope="module")
def served(
    receiver: tuple[WebhookReceiver, ThreadedServer],
) -> Iterator[tuple[ResendEmulator, ThreadedServer]]:
    emulator = ResendEmulator(api_key="re_test_key")
    emulator.configure_webhook(f"{receiver[1].url}/webhooks/resend", SECRET)
    server = serve_in_thread(emulator.app)
    yield emulator, server
    server.stop()


@pytest.fixture
def emulator(served: tuple[ResendEmulator, ThreadedServer]) -> Iterator[ResendEmulator]:
    emulator, server = served
    saved = (resend.api_key, resend.api_url)
    resend.api_key, resend.api_url = "re_test_key", server.url
    emulator.reset()
    yield emulator
    resend.api_key, resend.api_url = saved


def approval_email(**extra: Any) -> resend.Emails.SendParams:
    params: dict[str, Any] = {
        "from": "Agency <agent@agency.test>",
        "to": ["owner@client.test"],
        "reply_to": "approvals+job-1@agency.test",
        "subject": "Approve the spring campaign?",
        "text": "Reply APPROVE or REJECT.",
        "html": '<p>Reply APPROVE.</p><img src="cid:logo">',
        "headers": {"Message-ID": "<job-1@agency.test>"},
        "attachments": [
            {
                "filename": "logo.png",
                "content": base64.b64encode(b"\x89PNG fake").decode(),
                "content_id": "logo",
            }
        ],
        "tags": [{"name": "job", "value": "job-1"}],
    }
    return params | extra  # type: ignore[return-value]


def test_send_records_every_field_and_get_returns_it(emulator: ResendEmulator) -> None:
    sent = resend.Emails.send(approval_email(headers={"X-Entity-Ref-ID": "job-1"}))
    email = resend.Emails.get(sent["id"])
    assert email["subject"] == "Approve the spring campaign?"
    assert email["to"] == ["owner@client.test"]
    assert email["reply_to"] == ["approvals+job-1@agency.test"]
    # Resend's retrieve-email response: no headers, attachments, tags or idempotency key.
    assert not {"headers", "attachments", "tags", "idempotency_key"} & set(email)
    [record] = emulator.sent_emails()
    assert record["attachments"][0]["content_id"] == "logo"
    assert record["headers"] == {"X-Entity-Ref-ID": "job-1"}
    assert record["tags"] == [{"name": "job", "value": "job-1"}]


def test_resend_assigns_its_own_message_id_and_returns_it(
    emulator: ResendEmulator, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    # Resend sends through SES, which replaces a Message-ID the sender asked for; the real
    # one is returned by GET /emails/{id} and in webhooks, and replies thread on it.
    sent = resend.Emails.send(approval_email())
    email = resend.Emails.get(sent["id"])
    ours = "<job-1@agency.test>"
    assert email["message_id"] != ours and email["message_id"].endswith("@email.amazonses.com>")
    [record] = emulator.sent_emails()
    assert "Message-ID" not in record["headers"]
    assert record["requested_headers"] == {"Message-ID": ours}
    emulator.deliver_event("email.delivered", sent["id"])
    assert receiver[0].verified[-1]["data"]["message_id"] == email["message_id"]
    reply = resend.Emails.Receiving.get(emulator.reply_to_email(sent["id"], "APPROVE"))
    assert reply["headers"] is not None
    assert reply["headers"]["In-Reply-To"] == email["message_id"]
    assert reply["headers"]["References"] == email["message_id"]


def test_a_reply_to_a_threaded_email_carries_the_whole_thread(emulator: ResendEmulator) -> None:
    first = resend.Emails.send(approval_email())
    first_id = resend.Emails.get(first["id"])["message_id"]
    second = resend.Emails.send(
        approval_email(headers={"In-Reply-To": first_id, "References": first_id})
    )
    second_id = resend.Emails.get(second["id"])["message_id"]
    reply = resend.Emails.Receiving.get(emulator.reply_to_email(second["id"], "REJECT"))
    assert reply["headers"] is not None
    assert reply["headers"]["In-Reply-To"] == second_id
    assert reply["headers"]["References"] == f"{first_id} {second_id}"


def test_sent_emails_from_an_offset_returns_only_later_sends(emulator: ResendEmulator) -> None:
    ids = [resend.Emails.send(approval_email(subject=f"n{i}"))["id"] for i in range(3)]
    assert [e["id"] for e in emulator.sent_emails()] == ids
    assert [e["id"] for e in emulator.sent_emails(1)] == ids[1:]
    assert emulator.sent_emails(3) == []
    again = resend.Emails.send(approval_email(subject="n3"))["id"]
    assert [e["id"] for e in emulator.sent_emails(3)] == [again]


def test_same_idempotency_key_and_body_sends_once(emulator: ResendEmulator) -> None:
    first = resend.Emails.send(approval_email(), {"idempotency_key": "job-1/approval"})
    again = resend.Emails.send(approval_email(), {"idempotency_key": "job-1/approval"})
    assert again["id"] == first["id"]
    assert len(emulator.sent_emails()) == 1
    assert emulator.sends_by_idempotency_key() == {"job-1/approval": 1}


async def test_async_send_is_idempotent_too(emulator: ResendEmulator) -> None:
    first = await resend.Emails.send_async(approval_email(), {"idempotency_key": "k-async"})
    again = await resend.Emails.send_async(approval_email(), {"idempotency_key": "k-async"})
    assert first["id"] == again["id"]
    assert emulator.sends_by_idempotency_key() == {"k-async": 1}


def test_idempotency_key_reused_with_other_body_is_409(emulator: ResendEmulator) -> None:
    resend.Emails.send(approval_email(), {"idempotency_key": "job-2"})
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(approval_email(subject="Other"), {"idempotency_key": "job-2"})
    assert raised.value.code == 409
    assert raised.value.error_type == "invalid_idempotent_request"
    assert len(emulator.sent_emails()) == 1


def test_missing_subject_is_422_and_missing_key_is_401(emulator: ResendEmulator) -> None:
    params = approval_email()
    del params["subject"]
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(params)
    assert raised.value.code == 422
    resend.api_key = None
    with pytest.raises(ResendError) as unauthorized:
        resend.Emails.send(approval_email())
    assert unauthorized.value.code == 401
    assert emulator.sent_emails() == []


def test_reply_delivers_verified_webhook_and_receiving_api_returns_body(
    emulator: ResendEmulator, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    sent = resend.Emails.send(approval_email())
    reply_id = emulator.reply_to_email(sent["id"], "APPROVE")
    assert emulator.deliveries()[-1]["status"] == 200
    event = receiver[0].verified[-1]
    assert event["type"] == "email.received"
    assert event["data"]["email_id"] == reply_id
    assert event["data"]["from"] == "owner@client.test"
    assert event["data"]["to"] == ["approvals+job-1@agency.test"]
    received = resend.Emails.Receiving.get(reply_id)
    assert received["subject"] == "Re: Approve the spring campaign?"
    assert (received["text"] or "").startswith("APPROVE\n\nOn ")
    assert "> Reply APPROVE or REJECT." in (received["text"] or "")
    assert received["message_id"] == event["data"]["message_id"]


def test_html_only_reply_has_null_text_and_headers(emulator: ResendEmulator) -> None:
    sent = resend.Emails.send(approval_email())
    reply_id = emulator.reply_to_email(sent["id"], None, html="<div>Approve</div>")
    received = resend.Emails.Receiving.get(reply_id)
    assert received["text"] is None and received["headers"] is None
    assert (received["html"] or "").startswith("<div>Approve</div><br>")
    assert 'class="gmail_quote' in (received["html"] or "")
    # The list omits bodies and headers, as Resend's does.
    listed = resend.Emails.Receiving.list()["data"]
    assert [e["id"] for e in listed] == [reply_id]
    assert not {"html", "text", "headers", "object"} & set(listed[0])


@pytest.mark.parametrize("tamper", ["wrong_secret", "stale"])
def test_tampered_webhooks_are_rejected_by_verify(
    emulator: ResendEmulator, receiver: tuple[WebhookReceiver, ThreadedServer], tamper: str
) -> None:
    sign: dict[str, Any] = (
        {"sign_with": OTHER_SECRET}
        if tamper == "wrong_secret"
        else {"timestamp": int(time.time()) - 3600}
    )
    before = len(receiver[0].rejected)
    emulator.deliver_inbound("a@b.test", "approvals@agency.test", "Hi", "APPROVE", **sign)
    assert emulator.deliveries()[-1]["status"] == 400
    assert len(receiver[0].rejected) == before + 1


def test_bounce_event_is_signed_and_shaped_like_resend(
    emulator: ResendEmulator, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    sent = resend.Emails.send(approval_email())
    assert emulator.deliver_event("email.bounced", sent["id"]) == 200
    event = receiver[0].verified[-1]
    assert event["type"] == "email.bounced"
    assert event["data"]["email_id"] == sent["id"]
    assert event["data"]["bounce"]["type"] == "Permanent"
    assert event["data"]["tags"] == {"job": "job-1"}


def test_fail_next_returns_resend_shaped_errors(emulator: ResendEmulator) -> None:
    emulator.faults.fail_next(1, status=429, retry_after=2, path_prefix="/emails")
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(approval_email())
    assert raised.value.code == 429
    assert resend.Emails.send(approval_email())["id"]
    assert len(emulator.sent_emails()) == 1


def test_outbox_page_escapes_content_and_reply_form_delivers(
    emulator: ResendEmulator,
    served: tuple[ResendEmulator, ThreadedServer],
    receiver: tuple[WebhookReceiver, ThreadedServer],
) -> None:
    sent = resend.Emails.send(approval_email(subject="<script>alert(1)</script>"))
    base = served[1].url
    listing = httpx.get(f"{base}/_outbox").text
    assert "&lt;script&gt;" in listing and "<script>alert" not in listing
    view = httpx.get(f"{base}/_outbox/{sent['id']}").text
    assert "APPROVE</textarea>" in view and "data:image/png;base64," in view
    reply = httpx.post(f"{base}/_outbox/{sent['id']}/reply", data={"text": "APPROVE"})
    assert "answered HTTP 200" in reply.text
    assert receiver[0].verified[-1]["data"]["subject"].startswith("Re: ")


def test_http_control_endpoints_expose_state(
    emulator: ResendEmulator, served: tuple[ResendEmulator, ThreadedServer]
) -> None:
    base = served[1].url
    sent = resend.Emails.send(approval_email(), {"idempotency_key": str(uuid.uuid4())})
    reply = httpx.post(f"{base}/_emulator/emails/{sent['id']}/reply", json={"text": "REJECT"})
    assert reply.json()["delivery"]["status"] == 200
    state = httpx.get(f"{base}/_emulator/sent").json()
    assert [e["id"] for e in state["sent"]] == [sent["id"]]
    assert list(state["sends_by_idempotency_key"].values()) == [1]
    assert state["received"][0]["text"].startswith("REJECT")


def _status(error: pytest.ExceptionInfo[ResendError]) -> tuple[int, str]:
    return int(error.value.code), str(error.value.error_type)


@pytest.mark.parametrize(
    "sender",
    [
        "agent",
        "agent@",
        "@agency.test",
        "agent@agency",
        "Agency agent@agency.test",
        "Agency <agent@agency.test",
        "Agency <agent@agency.test>, other@agency.test",
        "agent@agency.test\r\nBcc: spy@evil.test",
    ],
)
def test_send_from_a_malformed_address_is_refused(emulator: ResendEmulator, sender: str) -> None:
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(approval_email(**{"from": sender}))
    assert _status(raised) == (422, "invalid_from_address")
    assert emulator.sent_emails() == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"to": "not-an-address"}, "validation_error"),
        ({"to": [f"r{i}@client.test" for i in range(51)]}, "validation_error"),
        ({"to": {"email": "owner@client.test"}}, "validation_error"),
        ({"reply_to": ["approvals@agency.test", "nope"]}, "validation_error"),
        ({"subject": 42}, "validation_error"),
        ({"text": None, "html": None}, "missing_required_field"),
        ({"headers": {"X-Job": 1}}, "validation_error"),
        ({"headers": ["X-Job: 1"]}, "validation_error"),
        ({"headers": {"X-Job": "1\r\nBcc: spy@evil.test"}}, "validation_error"),
        ({"attachments": [{"filename": "a.png"}]}, "invalid_attachment"),
        ({"tags": [{"name": "job id", "value": "1"}]}, "validation_error"),
    ],
)
def test_sloppy_send_bodies_are_refused(
    emulator: ResendEmulator, fields: dict[str, Any], error: str
) -> None:
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(approval_email(**fields))
    assert _status(raised) == (422, error)
    assert emulator.sent_emails() == []


def test_a_field_resend_does_not_know_is_ignored_as_resend_does(emulator: ResendEmulator) -> None:
    # Resend's schema (SendEmailRequest) allows other properties; it refuses none of them.
    sent = resend.Emails.send(approval_email(x_unknown="kept out"))
    assert "x_unknown" not in emulator.sent_email(sent["id"])


def test_requests_without_a_valid_bearer_key_are_refused(
    emulator: ResendEmulator, served: tuple[ResendEmulator, ThreadedServer]
) -> None:
    url = f"{served[1].url}/emails"
    body = dict(approval_email())
    for headers, status, name in [
        ({}, 401, "missing_api_key"),
        ({"Authorization": "Basic cmVfdGVzdF9rZXk6"}, 401, "missing_api_key"),
        ({"Authorization": "Bearer"}, 401, "missing_api_key"),
        ({"Authorization": "Bearer re_wrong_key"}, 403, "invalid_api_key"),
    ]:
        response = httpx.post(url, json=body, headers=headers)
        assert (response.status_code, response.json()["name"]) == (status, name), headers
    for path in ("/emails/x", "/emails/receiving/x", "/emails/receiving"):
        assert httpx.get(f"{served[1].url}{path}").status_code == 401
    assert emulator.sent_emails() == []


def test_a_body_that_is_not_a_json_object_is_refused(
    emulator: ResendEmulator, served: tuple[ResendEmulator, ThreadedServer]
) -> None:
    auth = {"Authorization": "Bearer re_test_key"}
    for content in (b"not json", b"[]", b'"text"', b"null"):
        response = httpx.post(f"{served[1].url}/emails", content=content, headers=auth)
        assert response.status_code == 422, content
    assert emulator.sent_emails() == []


def test_idempotency_key_longer_than_256_characters_is_refused(emulator: ResendEmulator) -> None:
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(approval_email(), {"idempotency_key": "k" * 257})
    assert _status(raised) == (400, "invalid_idempotency_key")
    assert emulator.sent_emails() == []


AUTH = {"Authorization": "Bearer re_test_key"}


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_team_rate_limit_refuses_past_its_window_as_resend_does(
    emulator: ResendEmulator, served: tuple[ResendEmulator, ThreadedServer]
) -> None:
    clock = Clock(1_000_000.25)
    emulator.rate_limit.clock = clock
    emulator.rate_limit.configure(2)
    url = served[1].url
    # Two keys, one team: the limit is shared.
    answers = [
        httpx.get(f"{url}/emails/receiving", headers={"Authorization": f"Bearer {key}"})
        for key in ("re_test_key", "re_test_key", "re_other_key")
    ]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[0].headers["ratelimit-limit"] == "2"
    assert answers[0].headers["ratelimit-remaining"] == "1"
    assert answers[1].headers["ratelimit-remaining"] == "0"
    refused = answers[2]
    assert refused.status_code == 429  # counted before the key is even checked
    assert refused.headers["retry-after"] == "1" and refused.headers["ratelimit-reset"] == "1"
    assert refused.json()["name"] == "rate_limit_exceeded"
    assert refused.json()["statusCode"] == 429
    # The SDK raises its rate-limit error with the headers, as it does against Resend.
    resend.api_url = url
    with pytest.raises(ResendError) as raised:
        resend.Emails.send(approval_email())
    assert str(raised.value.code) == "429" and raised.value.headers["retry-after"] == "1"
    # The next window admits again; the control pages were never limited.
    clock.now += 1
    assert httpx.get(f"{url}/emails/receiving", headers=AUTH).status_code == 200
    assert httpx.get(f"{url}/_emulator/sent").status_code == 200
    assert emulator.rate_limit.windows() == {
        1_000_000: {"accepted": 2, "refused": 2},
        1_000_001: {"accepted": 1, "refused": 0},
    }
    emulator.rate_limit.configure(None)  # off: no limit, no headers
    emulator.rate_limit.clock = time.time
    assert "ratelimit-limit" not in httpx.get(f"{url}/emails/receiving", headers=AUTH).headers
