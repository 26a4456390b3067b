"""Every encryption and signing key, derived from one master key with HKDF.

``ENCRYPTION_MASTER_KEY`` (base64 of 32 bytes) is the only key an operator keeps. From it
HKDF-SHA256 derives one independent key per use: workflow payloads, stored credentials,
approval tokens, webhook tokens. A master key has a key id (also derived, so it names the
key without revealing it); ciphertexts carry it, so after a rotation the earlier master
keys in ``ENCRYPTION_OLD_KEYS`` still decrypt and verify what was made with them.

The settings of before (``CREDENTIALS_ENCRYPTION_KEY``, ``APPROVAL_TOKEN_SECRET``) are
read too, only to decrypt and verify what was made with them (README: Encryption keys).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from activities.approval_tokens import SigningKeys
from activities.credentials import CredentialBox
from workers.settings import Settings

KEY_BYTES = 32
_LABEL = b"agency-orchestrator/"


class Use(StrEnum):
    """What a derived key is for; each use gets a key of its own."""

    PAYLOADS = "payloads"
    CREDENTIALS = "credentials"
    APPROVAL_TOKENS = "approval-tokens"
    WEBHOOK_TOKENS = "webhook-tokens"


def decode_key(value: str, name: str) -> bytes:
    """The 32 bytes of a base64 key; ``ValueError`` naming ``name`` otherwise."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{name} must be {KEY_BYTES} bytes, base64-encoded")
    return key


def _hkdf(secret: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


@dataclass(frozen=True)
class MasterKey:
    """One master key and its id."""

    secret: bytes

    @property
    def kid(self) -> str:
        """The key id: 16 hex digits derived from the key (it reveals nothing of it)."""
        return _hkdf(self.secret, _LABEL + b"key-id", 8).hex()

    def derive(self, use: Use) -> bytes:
        """The key for ``use``."""
        return _hkdf(self.secret, _LABEL + use.value.encode())

    def __repr__(self) -> str:
        return f"MasterKey(kid={self.kid})"


@dataclass(frozen=True)
class Keyring:
    """The current master key, the earlier ones that still decrypt, and the legacy keys."""

    current: MasterKey
    old: tuple[MasterKey, ...] = ()
    # CREDENTIALS_ENCRYPTION_KEY (v1 values), APPROVAL_TOKEN_SECRET (tokens made before).
    legacy_credentials_key: bytes | None = field(default=None, repr=False)
    legacy_token_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring the settings describe; ``SettingsError`` if the master key is unset."""
        settings.require("encryption_master_key")
        assert settings.encryption_master_key is not None
        current = MasterKey(
            decode_key(settings.encryption_master_key.get_secret_value(), "ENCRYPTION_MASTER_KEY")
        )
        old_secrets = [decode_key(v, "ENCRYPTION_OLD_KEYS") for v in old_key_values(settings)]
        old = tuple(MasterKey(s) for s in dict.fromkeys(old_secrets) if s != current.secret)
        legacy = settings.credentials_encryption_key
        token = settings.approval_token_secret
        return cls(
            current=current,
            old=old,
            legacy_credentials_key=(
                decode_key(legacy.get_secret_value(), "CREDENTIALS_ENCRYPTION_KEY")
                if legacy is not None
                else None
            ),
            legacy_token_secret=token.get_secret_value() if token is not None else None,
        )

    @property
    def masters(self) -> tuple[MasterKey, ...]:
        """Every master key, the current one first."""
        return (self.current, *self.old)

    def derived(self, use: Use) -> dict[str, bytes]:
        """Key id → the key for ``use`` of every master key, the current one first."""
        return {master.kid: master.derive(use) for master in self.masters}

    def signing_keys(self, use: Use) -> SigningKeys:
        """HMAC keys for tokens: sign with the current one, verify with any of them."""
        keys = [master.derive(use).hex() for master in self.masters]
        if self.legacy_token_secret:
            keys.append(self.legacy_token_secret)
        return SigningKeys(keys[0], keys[1:])

    def credential_box(self) -> CredentialBox:
        """The box that encrypts stored credentials under the current key id."""
        return CredentialBox(
            self.derived(Use.CREDENTIALS),
            current=self.current.kid,
            legacy_v1_key=self.legacy_credentials_key,
        )


def old_key_values(settings: Settings) -> list[str]:
    """The base64 values listed in ``ENCRYPTION_OLD_KEYS`` (comma-separated)."""
    if settings.encryption_old_keys is None:
        return []
    values = settings.encryption_old_keys.get_secret_value().split(",")
    return [v.strip() for v in values if v.strip()]


def credential_box(settings: Settings) -> CredentialBox:
    """The credential box of these settings (for the worker, the CLI and the demo)."""
    return Keyring.from_settings(settings).credential_box()
