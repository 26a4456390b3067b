"""What the API refuses, and that a refused request changes nothing: tokens that are
missing, expired, for another audience or project, signed by another key or not a user's;
another user's work (404); requests without a key, with bad JSON or a body that does not
validate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from psycopg.types.json import Jsonb

from ingress.api.routes import create_api
from tests.app.api_client import call
from tests.app.helpers import GATED_PLAN, AppUser, app_user, deafen, insert_generation
from tests.app.supabase_keys import Project, new_key
from tests.security.rls_helpers import digest
from workers.processes import build_api

# name → (make a token for ``user`` or None, the error code)
Forge = Callable[[Project, uuid.UUID], str | None]
REFUSED_TOKENS: list[tuple[str, Forge, str]] = [
    ("no token", lambda p, u: None, "token_missing"),
    ("expired", lambda p, u: p.token(u, exp=int(time.time()) - 120), "token_expired"),
    ("another audience", lambda p, u: p.token(u, aud="anon"), "token_invalid"),
    ("no audience", lambda p, u: p.token(u, aud=None), "token_invalid"),
    (
        "another project",
        lambda p, u: p.token(u, iss="https://evil.supabase.co/auth/v1"),
        "token_invalid",
    ),
    ("another key, same kid", lambda p, u: p.token(u, key=_stranger(p)), "token_invalid"),
    ("an unknown kid", lambda p, u: p.token(u, key=new_key("ES256")), "token_invalid"),
    ("the anon key", lambda p, u: p.token(u, role="anon", sub=None), "token_invalid"),
    ("a service role key", lambda p, u: p.token(u, role="service_role"), "token_invalid"),
    ("a subject that is no user id", lambda p, u: p.token("admin"), "token_invalid"),
    ("no expiry", lambda p, u: p.token(u, exp=None), "token_invalid"),
    ("alg none", lambda p, u: _unsigned(p, u), "token_invalid"),
    ("HS256 with the public key", lambda p, u: _confused(p, u), "token_invalid"),
    ("HS256 with another secret", lambda p, u: _other_secret(p, u), "token_invalid"),
    ("HS512 with the secret", lambda p, u: _hs512(p, u), "token_invalid"),
    ("not a JWT", lambda p, u: "not.a.jwt", "token_invalid"),
]


def _stranger(project: Project) -> Any:
    stranger = new_key("ES256")
    stranger.kid = project.published[0].kid  # claims to be the project's key
    return stranger


def _unsigned(project: Project, user: uuid.UUID) -> str:
    body = jwt.decode(project.token(user), options={"verify_signature": False})
    return jwt.encode(body, None, algorithm="none", headers={"kid": project.published[0].kid})


def _confused(project: Project, user: uuid.UUID) -> str:
    # The classic: the public key's PEM used as an HMAC secret.
    pem = (
        project.published[1]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    body = jwt.decode(project.token(user), options={"verify_signature": False})
    header = {"kid": project.published[1].kid}
    return _hmac_token(body, pem, "HS256", header)


def _other_secret(project: Project, user: uuid.UUID) -> str:
    body = jwt.decode(project.legacy_token(user), options={"verify_signature": False})
    return jwt.encode(body, "not-the-project-secret-but-long-enough-1234", algorithm="HS256")


def _hs512(project: Project, user: uuid.UUID) -> str:
    body = jwt.decode(project.legacy_token(user), options={"verify_signature": False})
    return jwt.encode(body, project.legacy_secret, algorithm="HS512")


def _hmac_token(body: dict[str, Any], secret: bytes, alg: str, header: dict[str, str]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": alg, "typ": "JWT", **header}).encode())
    payload = b64(json.dumps(body).encode())
    mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(mac)}"


async def _world(stack: Any) -> tuple[AppUser, dict[str, str]]:
    """A user with a pending generation, a job waiting at a gate and its approval."""
    user = await app_user(stack)
    # Nothing moves while the table runs.
    await deafen(stack)
    generation = await insert_generation(stack, user)
    job = uuid.uuid4()
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, user_id, workspace_id, title, plan, temporal_workflow_id) "
            "VALUES (%s, %s, %s, 't', %s, %s)",
            (job, user.user_id, user.workspace_id, Jsonb(GATED_PLAN), f"job-{job}"),
        )
        approval = await (
            await conn.execute(
                "INSERT INTO approvals (job_id, description, approver_email) "
                "VALUES (%s, 'delete', %s) RETURNING id",
                (job, user.email),
            )
        ).fetchone()
    assert approval is not None
    ids = {"generation": str(generation), "job": str(job), "approval": str(approval["id"])}
    return user, ids


def _requests(ids: dict[str, str], workspace: uuid.UUID) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/v1/generations", {"prompt_text": "x"}),
        ("POST", "/v1/generation-batches", {"prompts": [{"prompt_text": "x"}]}),
        (
            "POST",
            "/v1/jobs",
            {"workspace_id": str(workspace), "title": "t", "steps": GATED_PLAN["steps"]},
        ),
        ("GET", f"/v1/jobs/{ids['job']}", None),
        ("POST", f"/v1/jobs/{ids['job']}/cancel", None),
        ("GET", f"/v1/generations/{ids['generation']}", None),
        ("POST", f"/v1/generations/{ids['generation']}/cancel", None),
        ("GET", f"/v1/approvals/{ids['approval']}", None),
        ("POST", f"/v1/approvals/{ids['approval']}/decision", {"decision": "approve"}),
    ]


@pytest.mark.parametrize(
    ("forge", "code"), [(f, c) for _, f, c in REFUSED_TOKENS], ids=[n for n, _, _ in REFUSED_TOKENS]
)
async def test_refused_token_changes_nothing(api_stack: Any, forge: Forge, code: str) -> None:
    stack, project = api_stack
    user, ids = await _world(stack)
    token = forge(project, user.user_id)
    before = await digest(_url(stack))
    for method, path, body in _requests(ids, user.workspace_id):
        answer = await call(stack, method, path, token, body)
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["error"]["code"] == code, path
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert await digest(_url(stack)) == before


async def test_another_users_work_is_not_found_and_stays_as_it_was(api_stack: Any) -> None:
    stack, project = api_stack
    owner, ids = await _world(stack)
    intruder = await app_user(stack)
    token = project.token(intruder.user_id)
    before = await digest(_url(stack))
    for method, path, body in _requests(ids, intruder.workspace_id)[3:]:
        answer = await call(stack, method, path, token, body)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    # Starting work in the owner's workspace, or from the owner's stored prompt.
    prompt = uuid.uuid4()
    async with stack.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO prompts (id, user_id, prompt_text) VALUES (%s, %s, 'p')",
            (prompt, owner.user_id),
        )
    before = await digest(_url(stack))
    theirs = [
        (
            "/v1/jobs",
            {"workspace_id": str(owner.workspace_id), "title": "t", "steps": GATED_PLAN["steps"]},
        ),
        ("/v1/generations", {"prompt_id": str(prompt)}),
        ("/v1/generation-batches", {"prompts": [{"prompt_text": "x"}, {"prompt_id": str(prompt)}]}),
    ]
    for path, body in theirs:
        answer = await call(stack, "POST", path, token, body)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "validation_failed"
    assert await digest(_url(stack)) == before


BAD_REQUESTS = [
    (
        "no idempotency key",
        "/v1/generations",
        {"prompt_text": "x"},
        None,
        400,
        "idempotency_key_required",
    ),
    (
        "a key with spaces",
        "/v1/generations",
        {"prompt_text": "x"},
        "a b",
        400,
        "idempotency_key_invalid",
    ),
    (
        "a key too long",
        "/v1/generations",
        {"prompt_text": "x"},
        "k" * 256,
        400,
        "idempotency_key_invalid",
    ),
    ("not JSON", "/v1/generations", b"{nope", "k1", 400, "invalid_json"),
    ("a JSON list", "/v1/generations", [1], "k2", 400, "invalid_json"),
    ("no prompt", "/v1/generations", {"model": "soul"}, "k3", 422, "validation_failed"),
    (
        "an unknown field",
        "/v1/generations",
        {"prompt_text": "x", "status": "completed"},
        "k4",
        422,
        "validation_failed",
    ),
    (
        "an unknown model",
        "/v1/generations",
        {"prompt_text": "x", "model": "dall-e"},
        "k5",
        422,
        "validation_failed",
    ),
    (
        "six variations",
        "/v1/generation-batches",
        {"prompts": [{"prompt_text": "x"}] * 6},
        "k6",
        422,
        "validation_failed",
    ),
    ("no variations", "/v1/generation-batches", {"prompts": []}, "k7", 422, "validation_failed"),
    (
        "a javascript step",
        "/v1/jobs",
        {
            "workspace_id": str(uuid.uuid4()),
            "title": "t",
            "steps": [
                {"action": {"action": "navigate", "url": "javascript:alert(1)"}, "description": "x"}
            ],
        },
        "k8",
        422,
        "validation_failed",
    ),
    (
        "a decision of maybe",
        "/v1/approvals/{approval}/decision",
        {"decision": "maybe"},
        "k9",
        422,
        "validation_failed",
    ),
    (
        "an empty body to decide",
        "/v1/approvals/{approval}/decision",
        b"",
        "k10",
        400,
        "invalid_json",
    ),
    ("a path that is no id", "/v1/jobs/not-a-uuid/cancel", None, "k11", 404, "not_found"),
]


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "code"),
    [b[1:] for b in BAD_REQUESTS],
    ids=[b[0] for b in BAD_REQUESTS],
)
async def test_bad_request_is_refused_and_changes_nothing(
    api_stack: Any, path: str, body: Any, key: str | None, status: int, code: str
) -> None:
    stack, project = api_stack
    user, ids = await _world(stack)
    token = project.token(user.user_id)
    before = await digest(_url(stack))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    raw = body if isinstance(body, bytes) else (None if body is None else json.dumps(body))
    async with httpx.AsyncClient(base_url=stack.ingress_url) as http:
        answer = await http.post(path.format(**ids), content=raw, headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert await digest(_url(stack)) == before


async def test_the_schema_describes_every_route(api_stack: Any) -> None:
    stack, _ = api_stack
    answer = await call(stack, "GET", "/v1/openapi.json", None)
    assert answer.status_code == 200
    schema = answer.json()
    assert schema["openapi"].startswith("3.1")
    deps = build_api(stack.settings, stack.pool, stack.client)
    app = create_api(deps)
    await deps.aclose()
    served = {
        (method.lower(), "/v1" + route.path.replace("{id:uuid}", "{id}"))
        for route in app.routes
        for method in (route.methods or ()) - {"HEAD"}  # type: ignore[attr-defined]
    }
    described = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert served == described
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    names = set(schema["components"]["schemas"])
    assert refs and all(r.removeprefix("#/components/schemas/") in names for r in refs)
    for path, ops in schema["paths"].items():
        if "post" in ops:
            params = {p["name"] for p in ops["post"]["parameters"]}
            assert "Idempotency-Key" in params, path


def _url(stack: Any) -> str:
    return str(stack.settings.database_url.get_secret_value())
