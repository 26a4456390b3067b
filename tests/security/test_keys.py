"""Keys: one master key, a separate derived key per use, key ids on every ciphertext, old
keys that still decrypt and verify, and `orchestrator keys rotate`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg_pool import AsyncConnectionPool

from activities import approval_tokens
from activities.approval_tokens import InvalidToken, Purpose
from activities.credentials import DecryptionError
from activities.higgsfield import key_context, webhook_token
from activities.metric_sync import credentials_context
from activities.token_refresh import threads_context
from db import metrics, tokens
from db.generations import Q
from ingress.inbound_higgsfield import WebhookRefused, parse_hint
from tests.db.factories import insert_user
from tests.harness import stack_settings
from workers.keys import Keyring, Use
from workers.settings import SettingsError, load_settings
from workers.worker import build_services

# Fixed keys: test ids name them, and every collection (pytest-xdist's workers) must agree.
A, B, C = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2, 3))
APPROVER = "approver@example.com"


def ring(current: str, *old: str, **legacy: str) -> Keyring:
    """The keyring of settings with this master key, these old keys and legacy settings."""
    settings = load_settings(
        encryption_master_key=current, encryption_old_keys=",".join(old) or None, **legacy
    )
    return Keyring.from_settings(settings)


def v1_ciphertext(key_b64: str, plaintext: str, context: str) -> str:
    """A credential as stored before key ids (``v1:``, CREDENTIALS_ENCRYPTION_KEY)."""
    nonce = os.urandom(12)
    sealed = AESGCM(base64.b64decode(key_b64)).encrypt(nonce, plaintext.encode(), context.encode())
    return "v1:" + base64.b64encode(nonce + sealed).decode()


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("encryption_master_key", "not base64!"),
        ("encryption_master_key", base64.b64encode(bytes(16)).decode()),  # too short
        ("encryption_master_key", base64.b64encode(bytes(33)).decode()),  # too long
        ("encryption_master_key", f"{A},{B}"),  # one master key; earlier ones are old keys
        ("encryption_master_key", ""),
        ("encryption_old_keys", f"{A},nope"),
        ("credentials_encryption_key", base64.b64encode(bytes(31)).decode()),
        ("codec_auth_token", "short"),
    ],
)
def test_a_bad_key_setting_is_one_line_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^invalid setting {name.upper()}: "):
        load_settings(**{name: value})


def test_without_a_master_key_nothing_encrypts() -> None:
    with pytest.raises(SettingsError, match="missing setting ENCRYPTION_MASTER_KEY"):
        Keyring.from_settings(load_settings(credentials_encryption_key=A))


def test_old_keys_tolerate_spaces_and_repeat_nothing() -> None:
    keys = ring(A, f" {B} ", "", B, A)
    assert [m.kid for m in keys.masters] == [ring(A).current.kid, ring(B).current.kid]


# --- derived keys -------------------------------------------------------------------------


def test_each_use_has_its_own_key_and_the_key_id_reveals_none() -> None:
    master = ring(A).current
    derived = {use: master.derive(use) for use in Use}
    assert len(set(derived.values())) == len(Use)
    assert master.secret not in derived.values()
    assert master.kid not in A and len(master.kid) == 16
    assert ring(A).current.kid == master.kid != ring(B).current.kid  # stable, per key
    legacy = ring(A, B, credentials_encryption_key=C, approval_token_secret="legacy-token-value")
    shown = repr(legacy) + repr(legacy.signing_keys(Use.APPROVAL_TOKENS))
    for secret in (A, B, C, master.secret.hex(), repr(master.secret), "legacy-token-value"):
        assert secret not in shown


async def test_the_worker_signs_and_encrypts_each_use_with_its_own_key(
    pool: AsyncConnectionPool,
) -> None:
    settings = stack_settings("postgresql://unused", "q", 8080, "http://127.0.0.1:9", "whsec_eA==")
    services = build_services(settings, pool)
    try:
        approval_key = str(services.email.token_secret)
        webhook_key = str(services.higgsfield.token_secret)
        assert approval_key != webhook_key, "approval and webhook tokens share a key"
        keyring = Keyring.from_settings(settings)
        assert approval_key == keyring.current.derive(Use.APPROVAL_TOKENS).hex()
        assert webhook_key == keyring.current.derive(Use.WEBHOOK_TOKENS).hex()
        assert services.credentials.current == keyring.current.kid
    finally:
        await services.aclose()


# --- credentials --------------------------------------------------------------------------


def test_a_credential_carries_its_key_id_and_decrypts_after_a_rotation() -> None:
    before = ring(A).credential_box()
    stored = before.encrypt("hf-key:secret-part", "user_api_keys:u:higgsfield")
    assert stored.startswith(f"v2:{ring(A).current.kid}:") and "secret-part" not in stored

    after = ring(B, A).credential_box()  # A moved to ENCRYPTION_OLD_KEYS
    assert after.decrypt(stored, "user_api_keys:u:higgsfield") == "hf-key:secret-part"
    rotated = after.reencrypt(stored, "user_api_keys:u:higgsfield")
    assert rotated is not None and rotated.startswith(f"v2:{ring(B).current.kid}:")
    assert after.reencrypt(rotated, "user_api_keys:u:higgsfield") is None  # already current
    assert ring(B).credential_box().decrypt(rotated, "user_api_keys:u:higgsfield")

    with pytest.raises(DecryptionError, match="not configured: add that master key"):
        ring(B).credential_box().decrypt(stored, "user_api_keys:u:higgsfield")


def test_credentials_from_before_key_ids_decrypt_with_the_legacy_key() -> None:
    stored = v1_ciphertext(C, "EAAB-legacy", "platform_connections:x")
    box = ring(A, credentials_encryption_key=C).credential_box()
    assert box.decrypt(stored, "platform_connections:x") == "EAAB-legacy"
    assert box.key_id(stored) == "v1" and not box.is_current(stored)
    with pytest.raises(DecryptionError, match="set CREDENTIALS_ENCRYPTION_KEY"):
        ring(A).credential_box().decrypt(stored, "platform_connections:x")


def _hostile_credentials() -> list[str]:
    box = ring(A).credential_box()
    good = box.encrypt("plain", "ctx")
    kid = ring(A).current.kid
    body = good.split(":", 2)[2]
    flipped = base64.b64encode(bytes([base64.b64decode(body)[0] ^ 1]) + base64.b64decode(body)[1:])
    return [
        "",
        "plain",
        "v3:" + body,
        "v2:" + body,  # no key id
        f"v2::{body}",
        f"v2:{kid}",
        f"v2:{kid}:",
        f"v2:{kid}:not base64!",
        f"v2:{kid}:{body[:20]}",  # truncated
        f"v2:{kid}:{flipped.decode()}",  # damaged
        f"v2:{ring(B).current.kid}:{body}",  # relabelled with another key's id
        f"v2:{kid}:{body}:extra",
        "v1:" + body,  # a v2 body presented as legacy, with no legacy key
    ]


@pytest.mark.parametrize(
    "stored",
    _hostile_credentials(),
    ids=lambda v: str(len(v)),  # values hold a random nonce
)
def test_a_damaged_or_forged_credential_is_a_decryption_error(stored: str) -> None:
    box = ring(A).credential_box()
    with pytest.raises(DecryptionError):
        box.decrypt(stored, "ctx")


def test_a_credential_moved_to_another_row_does_not_decrypt() -> None:
    box = ring(A).credential_box()
    stored = box.encrypt("secret", "user_api_keys:alice:higgsfield")
    with pytest.raises(DecryptionError):
        box.decrypt(stored, "user_api_keys:mallory:higgsfield")


# --- approval and webhook tokens ----------------------------------------------------------


def _token(keys: str, purpose: Purpose = Purpose.REPLY) -> tuple[uuid.UUID, str]:
    approval_id = uuid.uuid4()
    later = datetime.now(UTC) + timedelta(days=1)
    return approval_id, approval_tokens.sign(keys, approval_id, APPROVER, purpose, later)


def _verify(keys: str, token: str) -> None:
    approval_tokens.verify(keys, token, APPROVER, purpose=Purpose.REPLY, now=datetime.now(UTC))


def test_approval_tokens_made_before_a_rotation_verify_until_the_old_key_is_dropped() -> None:
    _, token = _token(ring(A).signing_keys(Use.APPROVAL_TOKENS))
    _verify(ring(B, A).signing_keys(Use.APPROVAL_TOKENS), token)
    with pytest.raises(InvalidToken):
        _verify(ring(B).signing_keys(Use.APPROVAL_TOKENS), token)


@pytest.mark.parametrize(
    "signer",
    [
        pytest.param(lambda: ring(A).signing_keys(Use.WEBHOOK_TOKENS).current, id="webhook key"),
        pytest.param(lambda: ring(A).current.derive(Use.CREDENTIALS).hex(), id="credential key"),
        pytest.param(lambda: A, id="the master key itself"),
        pytest.param(lambda: ring(B).signing_keys(Use.APPROVAL_TOKENS).current, id="other master"),
    ],
)
def test_an_approval_token_signed_with_any_other_key_is_refused(signer: Any) -> None:
    _, token = _token(signer())
    with pytest.raises(InvalidToken, match="signature"):
        _verify(ring(A, credentials_encryption_key=C).signing_keys(Use.APPROVAL_TOKENS), token)


def test_tokens_signed_with_the_legacy_secret_verify_while_it_is_set() -> None:
    legacy = "a-legacy-approval-token-secret"
    _, token = _token(legacy)
    _verify(ring(A, approval_token_secret=legacy).signing_keys(Use.APPROVAL_TOKENS), token)
    with pytest.raises(InvalidToken):
        _verify(ring(A).signing_keys(Use.APPROVAL_TOKENS), token)
    # Higgsfield webhook URLs made before were signed with it too.
    gid = uuid.uuid4()
    body = b'{"request_id": "r", "status": "completed"}'
    with_legacy = ring(A, approval_token_secret=legacy).signing_keys(Use.WEBHOOK_TOKENS)
    assert parse_hint(with_legacy, str(gid), webhook_token(legacy, gid), body)[0] == gid
    without = ring(A).signing_keys(Use.WEBHOOK_TOKENS)
    with pytest.raises(WebhookRefused):
        parse_hint(without, str(gid), webhook_token(legacy, gid), body)


def test_a_webhook_token_made_with_the_approval_key_is_refused() -> None:
    keys = ring(A)
    gid = uuid.uuid4()
    body = b'{"request_id": "r", "status": "completed"}'
    forged = webhook_token(keys.signing_keys(Use.APPROVAL_TOKENS), gid)
    with pytest.raises(WebhookRefused, match="invalid webhook token"):
        parse_hint(keys.signing_keys(Use.WEBHOOK_TOKENS), str(gid), forged, body)
    real = webhook_token(keys.signing_keys(Use.WEBHOOK_TOKENS), gid)
    assert parse_hint(ring(B, A).signing_keys(Use.WEBHOOK_TOKENS), str(gid), real, body)[0] == gid


# --- orchestrator keys rotate ---------------------------------------------------------------


def _rotate(db_url: str, master: str, *old: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    environment = base | {
        "DATABASE_URL": db_url,
        "ENCRYPTION_MASTER_KEY": master,
        "ORCHESTRATOR_HOME": str(Path("/nonexistent-orchestrator-home")),
        **({"ENCRYPTION_OLD_KEYS": ",".join(old)} if old else {}),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "keys", "rotate"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _stored(pool: AsyncConnectionPool) -> dict[str, str]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT user_id, encrypted_api_key FROM user_api_keys")
        keys = await cur.fetchall()
        cur = await conn.execute(
            "SELECT id, credentials->>'ciphertext' AS c FROM platform_connections"
        )
        conns = await cur.fetchall()
        cur = await conn.execute("SELECT id, access_token FROM threads_accounts")
        accounts = await cur.fetchall()
    return (
        {str(r["user_id"]): r["encrypted_api_key"] for r in keys}
        | {str(r["id"]): r["c"] for r in conns}
        | {str(r["id"]): r["access_token"] for r in accounts}
    )


async def test_keys_rotate_reencrypts_every_credential_once_and_can_be_run_again(
    db_url: str, pool: AsyncConnectionPool
) -> None:
    # Credentials from three eras: the legacy key (v1), an earlier master key, the current one.
    plain: dict[str, str] = {}
    contexts: dict[str, str] = {}
    async with pool.connection() as conn:
        for era, box_or_key in (("v1", C), ("old", ring(A)), ("new", ring(B))):
            user = await insert_user(conn)
            secret = f"hf-{era}-{uuid.uuid4().hex}"
            context = key_context(user, "higgsfield")
            stored = (
                v1_ciphertext(box_or_key, secret, context)
                if isinstance(box_or_key, str)
                else box_or_key.credential_box().encrypt(secret, context)
            )
            await conn.execute(
                Q["upsert_user_api_key"],
                {"user_id": user, "service": "higgsfield", "encrypted_api_key": stored},
            )
            plain[str(user)], contexts[str(user)] = secret, context
            connection_id = uuid.uuid4()
            token = json.dumps({"access_token": f"EAAB-{era}-{uuid.uuid4().hex}"})
            context = credentials_context(connection_id)
            sealed = (
                v1_ciphertext(box_or_key, token, context)
                if isinstance(box_or_key, str)
                else box_or_key.credential_box().encrypt(token, context)
            )
            await metrics.insert_connection(
                conn,
                connection_id=connection_id,
                platform="meta",
                credentials={"ciphertext": sealed},
                account_id=f"acct-{era}",
                account_name=None,
                sync_frequency=60,
                created_by=None,
            )
            plain[str(connection_id)], contexts[str(connection_id)] = token, context
            account_id = uuid.uuid4()  # seed 003's Threads accounts (issue 28)
            threads = f"THAA-{era}-{uuid.uuid4().hex}"
            context = threads_context(account_id)
            sealed = (
                v1_ciphertext(box_or_key, threads, context)
                if isinstance(box_or_key, str)
                else box_or_key.credential_box().encrypt(threads, context)
            )
            await tokens.insert_threads_account(
                conn,
                account_id=account_id,
                user_id=user,
                threads_user_id=f"th-{era}",
                username="",
                access_token=sealed,
                expires_at=datetime.now(UTC) + timedelta(days=60),
            )
            plain[str(account_id)], contexts[str(account_id)] = threads, context
    before = await _stored(pool)

    # Without the earlier master key, its rows cannot be read: the others are still done,
    # each on its own, and the run names what it could not read (and exits non-zero).
    first = _rotate(db_url, B, credentials_encryption_key=C)
    assert first.returncode == 1, first.stderr
    assert "3 credentials could not be read" in first.stderr
    for table in ("user_api_keys", "threads_accounts", "platform_connections"):
        counts = "1 re-encrypted, 1 already current, 0 changed meanwhile, 1 unreadable"
        assert f"{table}: {counts}" in first.stdout

    # With it, the run finishes the job; a further run changes nothing.
    second = _rotate(db_url, B, A, credentials_encryption_key=C)
    assert second.returncode == 0, second.stderr
    for table in ("user_api_keys", "threads_accounts", "platform_connections"):
        counts = "1 re-encrypted, 2 already current, 0 changed meanwhile, 0 unreadable"
        assert f"{table}: {counts}" in second.stdout
    third = _rotate(db_url, B, A, credentials_encryption_key=C)
    assert third.returncode == 0 and "0 re-encrypted, 3 already current" in third.stdout

    after = await _stored(pool)
    current = ring(B).credential_box()  # neither the old key nor the legacy one is needed now
    for place, stored in after.items():
        assert stored.startswith(f"v2:{current.current}:"), place
        assert current.decrypt(stored, contexts[place]) == plain[place]
    # Never a secret, a plaintext or a ciphertext in what it prints.
    printed = first.stdout + first.stderr + second.stdout + second.stderr + third.stdout
    for value in [A, B, C, *plain.values(), *before.values(), *after.values()]:
        assert value not in printed
