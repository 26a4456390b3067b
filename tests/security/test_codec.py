"""Workflow payloads are encrypted before they reach Temporal; operators read them only
through the ingress's codec endpoint, with its bearer token (the real `temporal` CLI)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from devstack.embedded import find_binary
from ingress.codec_server import SESSION_COOKIE, SESSION_SECONDS, session_value
from tests.encryption import CONVERTER, payloads_in
from tests.harness import Stack, running_stack
from tests.workflows.jobs_fixtures import SAFE_STEPS, job_request, start_job
from workers.codec import ENCODING, KEY_ID, PayloadDecryptError, data_converter
from workers.keys import Keyring, MasterKey
from workers.sdk_internals.compiled_sandbox import CompiledSandboxRunner
from workers.worker import ALL_WORKFLOWS

UI = "http://127.0.0.1:8233"
CANARY = f"codec-canary-{uuid.uuid4().hex}"  # stands for a secret or an email address


def other_keyring(*old: Keyring) -> Keyring:
    return Keyring(MasterKey(os.urandom(32)), tuple(k.current for k in old))


# --- the codec ----------------------------------------------------------------------------


async def test_every_payload_is_encrypted_under_the_key_id_and_decodes_after_a_rotation() -> None:
    before = other_keyring()
    payloads = await data_converter(before).encode([{"note": CANARY}, "plain text"])
    for payload in payloads:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID] == before.current.kid.encode()
        assert CANARY.encode() not in payload.SerializeToString()
    after = other_keyring(before)  # a new master key; the earlier one in ENCRYPTION_OLD_KEYS
    assert await data_converter(after).decode(payloads) == [{"note": CANARY}, "plain text"]
    [fresh] = await data_converter(after).encode(["x"])
    assert fresh.metadata[KEY_ID] == after.current.kid.encode()
    with pytest.raises(PayloadDecryptError, match=before.current.kid):
        await data_converter(other_keyring()).decode(payloads)


async def test_payloads_that_are_not_ours_pass_through() -> None:
    # What histories recorded before encryption hold: they still replay.
    plain = await pydantic_data_converter.encode([{"a": 1}, None, "text"])
    assert await CONVERTER.decode(plain) == [{"a": 1}, None, "text"]


async def test_a_damaged_or_relabelled_payload_is_refused() -> None:
    keys = other_keyring(other_keyring())
    [good] = await data_converter(keys).encode([CANARY])
    damaged = type(good)()
    damaged.CopyFrom(good)
    damaged.data = good.data[:-1] + bytes([good.data[-1] ^ 1])
    relabelled = type(good)()
    relabelled.CopyFrom(good)
    relabelled.metadata[KEY_ID] = keys.old[0].kid.encode()  # a configured key, not its own
    unlabelled = type(good)()
    unlabelled.CopyFrom(good)
    del unlabelled.metadata[KEY_ID]
    for bad in (damaged, relabelled, unlabelled):
        with pytest.raises(PayloadDecryptError):
            await data_converter(keys).decode([bad])


async def test_failure_messages_and_stack_traces_are_encrypted_too() -> None:
    failure = Failure()
    try:
        raise ApplicationError(f"vendor refused {CANARY}")
    except ApplicationError as exc:
        await CONVERTER.encode_failure(exc, failure)
    assert CANARY.encode() not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    assert CANARY in str(await CONVERTER.decode_failure(failure))


# --- the endpoint and the CLI -------------------------------------------------------------


@pytest.fixture
async def stack(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url, temporal_env.client, task_queue, worker=False, codec_cors_origins=f"{UI}/"
    ) as stack:
        yield stack


def _token(stack: Stack) -> str:
    assert stack.settings.codec_auth_token is not None
    return stack.settings.codec_auth_token.get_secret_value()


async def _encrypted_body(*values: Any) -> str:
    return json_format.MessageToJson(Payloads(payloads=await CONVERTER.encode(list(values))))


def _decoded(response: httpx.Response) -> list[Any]:
    payloads = json_format.Parse(response.text, Payloads()).payloads
    return pydantic_data_converter.payload_converter.from_payloads(list(payloads))


async def test_the_codec_endpoint_decodes_for_the_token_holder_only(stack: Stack) -> None:
    token = _token(stack)
    body = await _encrypted_body({"note": CANARY})
    url = f"{stack.ingress_url}/codec/decode"
    refused: dict[str, dict[str, str]] = {
        "no authorization": {},
        "wrong token": {"Authorization": "Bearer not-the-codec-token-at-all"},
        "token prefix": {"Authorization": f"Bearer {token[:-1]}"},
        "token plus more": {"Authorization": f"Bearer {token}x"},
        "basic scheme": {"Authorization": f"Basic {token}"},
        "token without scheme": {"Authorization": token},
        "bearer without a token": {"Authorization": "Bearer"},
        "token in another header": {"X-Codec-Token": token},
    }
    async with httpx.AsyncClient(timeout=10) as http:
        for name, headers in refused.items():
            response = await http.post(url, content=body, headers=headers)
            assert response.status_code == 401, name
            assert response.headers["www-authenticate"] == "Bearer"
            assert CANARY not in response.text, name
        ok = await http.post(url, content=body, headers={"Authorization": f"bearer {token}"})
        assert ok.status_code == 200 and _decoded(ok) == [{"note": CANARY}]

        auth = {"Authorization": f"Bearer {token}"}
        namespaced = await http.post(url, content=body, headers=auth | {"X-Namespace": "default"})
        assert namespaced.status_code == 200
        other = await http.post(url, content=body, headers=auth | {"X-Namespace": "prod"})
        assert other.status_code == 403 and CANARY not in other.text

        # Encoding through it gives what the worker decodes; it refuses what it cannot read.
        plain = json_format.MessageToJson(
            Payloads(payloads=pydantic_data_converter.payload_converter.to_payloads([CANARY]))
        )
        encoded = await http.post(f"{stack.ingress_url}/codec/encode", content=plain, headers=auth)
        assert encoded.status_code == 200 and CANARY not in encoded.text
        payloads = json_format.Parse(encoded.text, Payloads()).payloads
        assert await CONVERTER.decode(list(payloads)) == [CANARY]
        for bad in ("", "not json", "[1, 2]", '{"payloads": [{"unknown": 1}]}', '{"payloads": 3}'):
            response = await http.post(url, content=bad, headers=auth)
            assert response.status_code == 400, bad
        foreign = await data_converter(other_keyring()).encode([CANARY])
        response = await http.post(
            url, content=json_format.MessageToJson(Payloads(payloads=foreign)), headers=auth
        )
        assert response.status_code == 422 and CANARY not in response.text
        assert (await http.get(url, headers=auth)).status_code == 405


async def test_only_the_ui_origin_may_call_the_codec_endpoint_from_a_browser(stack: Stack) -> None:
    url = f"{stack.ingress_url}/codec/decode"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        allowed = await http.options(url, headers=preflight | {"Origin": UI})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == UI
        allowed_headers = allowed.headers["access-control-allow-headers"]
        assert {"authorization", "x-namespace"} <= {h.strip() for h in allowed_headers.split(",")}
        for origin in (
            "http://evil.example",
            "null",
            "http://127.0.0.1:8234",
            "https://127.0.0.1:8233",
            f"{UI}.evil.example",
            "http://localhost:8233",
        ):
            refused = await http.options(url, headers=preflight | {"Origin": origin})
            assert refused.status_code == 403, origin
            assert "access-control-allow-origin" not in refused.headers, origin
        # The POST itself, with the right token, from another origin: refused as well.
        body = await _encrypted_body(CANARY)
        auth = {"Authorization": f"Bearer {_token(stack)}"}
        post = await http.post(url, content=body, headers=auth | {"Origin": "http://evil.example"})
        assert post.status_code == 403 and CANARY not in post.text
        ui = await http.post(url, content=body, headers=auth | {"Origin": UI})
        assert ui.status_code == 200 and ui.headers["access-control-allow-origin"] == UI


async def _temporal(client: Client, *args: str) -> subprocess.CompletedProcess[str]:
    """The `temporal` CLI (in a thread: the ingress it calls runs on this event loop)."""
    address = client.service_client.config.target_host
    command = [str(find_binary("temporal")), *args, "--address", address]
    command += ["--namespace", client.namespace]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )


def _readable(output: str) -> str:
    """What an operator reads in the CLI's JSON: the text, and every payload's data decoded
    from base64 (how the JSON carries it)."""
    parts = [output]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
                parts.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(output))
    return "\n".join(parts)


async def test_the_temporal_cli_shows_plaintext_only_through_the_codec_endpoint(
    stack: Stack,
) -> None:
    workflow_id = f"codec-probe-{uuid.uuid4()}"
    # No worker polls this queue: the history holds just what the client sent.
    await stack.client.start_workflow(
        "CodecProbe",
        {"note": CANARY, "approver": "someone@example.com"},
        id=workflow_id,
        task_queue=f"{stack.settings.temporal_task_queue}-nobody",
        memo={"memo": CANARY},
        static_summary=f"summary {CANARY}",
    )
    show = ["workflow", "show", "--workflow-id", workflow_id, "--output", "json"]
    describe = ["workflow", "describe", "--workflow-id", workflow_id, "--output", "json"]
    codec = ["--codec-endpoint", f"{stack.ingress_url}/codec"]

    plain = await _temporal(stack.client, *show)
    assert plain.returncode == 0, plain.stderr
    assert workflow_id in plain.stdout
    assert CANARY not in _readable(plain.stdout)
    assert "someone@example.com" not in _readable(plain.stdout)
    assert base64.b64encode(ENCODING).decode() in plain.stdout
    assert CANARY not in _readable((await _temporal(stack.client, *describe)).stdout)

    # A wrong token: the CLI gets 401s, retries until its deadline, and shows nothing.
    refused = await _temporal(
        stack.client, *show, *codec, "--codec-auth", "Bearer not-the-codec-token-at-all"
    )
    assert refused.returncode != 0 and CANARY not in refused.stdout + refused.stderr

    auth = ["--codec-auth", f"Bearer {_token(stack)}"]
    decoded = await _temporal(stack.client, *show, *codec, *auth)
    assert decoded.returncode == 0, decoded.stderr
    readable = _readable(decoded.stdout)
    assert f"summary {CANARY}" in readable and "someone@example.com" in readable
    described = await _temporal(stack.client, *describe, *codec, *auth)
    assert described.returncode == 0 and CANARY in _readable(described.stdout)
    await stack.client.get_workflow_handle(workflow_id).terminate("probe done")


async def test_a_browser_signs_in_once_and_the_ui_decodes_with_its_session_cookie(
    stack: Stack,
) -> None:
    token = _token(stack)
    login = f"{stack.ingress_url}/codec/login"
    url = f"{stack.ingress_url}/codec/decode"
    body = await _encrypted_body({"note": CANARY})
    async with httpx.AsyncClient(timeout=10) as http:
        form = await http.get(login)
        assert form.status_code == 200 and "password" in form.text and token not in form.text
        for wrong in ("", "not-the-codec-token-at-all", token[:-1], f"{token} "[:-1] + "x"):
            refused = await http.post(login, data={"token": wrong})
            assert refused.status_code == 401 and "set-cookie" not in refused.headers, wrong
        signed_in = await http.post(login, data={"token": token})
        assert signed_in.status_code == 200
        cookie = signed_in.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/codec", "Max-Age=43200"):
            assert attribute.lower() in cookie.lower(), cookie
        session = signed_in.cookies[SESSION_COOKIE]
        assert token not in cookie
        http.cookies.clear()  # from here on, each request names the cookie it sends

        def with_cookie(value: str, origin: str = UI) -> dict[str, str]:
            return {"Origin": origin, "Cookie": f"{SESSION_COOKIE}={value}"}

        # The UI's request: its origin, the cookie, no Authorization header.
        decoded = await http.post(url, content=body, headers=with_cookie(session))
        assert decoded.status_code == 200 and _decoded(decoded) == [{"note": CANARY}]
        assert decoded.headers["access-control-allow-credentials"] == "true"
        foreign = await http.post(
            url, content=body, headers=with_cookie(session, "http://evil.example")
        )
        assert foreign.status_code == 403 and CANARY not in foreign.text

        expires, _, mac = session.partition(".")
        past = int(expires) - 2 * SESSION_SECONDS
        forged = {
            "another expiry, same mac": f"{int(expires) + 3600}.{mac}",
            "expired, correctly made": session_value(token, past),
            "made with another token": session_value("another-token-entirely", int(expires)),
            "mac only": mac,
            "empty": "",
            "huge expiry": f"{'9' * 5000}.{mac}",
        }
        for name, value in forged.items():
            response = await http.post(url, content=body, headers=with_cookie(value))
            assert response.status_code == 401 and CANARY not in response.text, name


async def test_a_history_recorded_now_is_encrypted_and_replays_with_the_workers_converter(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request = await job_request(stack, SAFE_STEPS[:1])
        handle = await start_job(stack, request)
        assert (await handle.result()).status == "completed"
        history = await handle.fetch_history()
    # What RECORD_HISTORIES=1 writes: every payload encrypted, but the search attributes
    # (Temporal indexes them: ids and statuses) and the SDK core's own markers: its
    # bookkeeping of local activities (sequence number, attempt, activity type) and the
    # patch markers of workflow.patched (the patch id).
    recorded = WorkflowHistory.from_json(handle.id, history.to_json())
    started = recorded.events[0].workflow_execution_started_event_attributes
    assert [p.metadata["encoding"] for p in started.input.payloads] == [ENCODING]
    plain: list[str] = []
    for event in recorded.events:
        copy = type(event)()
        copy.CopyFrom(event)
        copy.marker_recorded_event_attributes.details.pop("data", None)  # the bookkeeping
        if copy.marker_recorded_event_attributes.marker_name == "core_patch":
            copy.marker_recorded_event_attributes.details.pop("patch-data", None)
        for payload in payloads_in(copy):
            if payload.metadata.get("type") is None:  # not a search attribute
                plain += [] if payload.metadata["encoding"] == ENCODING else [str(payload)]
    assert plain == []
    replayer = Replayer(
        workflows=ALL_WORKFLOWS, data_converter=CONVERTER, workflow_runner=CompiledSandboxRunner()
    )
    await replayer.replay_workflow(recorded)
    with pytest.raises(RuntimeError, match="PayloadDecryptError"):  # and only with the key
        await Replayer(
            workflows=ALL_WORKFLOWS,
            data_converter=data_converter(other_keyring()),
            workflow_runner=CompiledSandboxRunner(),
        ).replay_workflow(recorded)
