"""Credentials encrypted at rest with AES-256-GCM, decrypted only inside activities.

A ciphertext is ``v2:<key id>:<base64(nonce || ciphertext || tag)>``: the key id names
the key it was made with, so the key can rotate (``orchestrator keys rotate`` re-encrypts
stored values under the current one) while values made with an earlier key still decrypt.
``v1:<base64(...)>`` values, from before key ids, decrypt with the legacy key
(``CREDENTIALS_ENCRYPTION_KEY``). Either is bound to where it is stored (the associated
data names the table and row), so it cannot be copied to another user's row and
decrypted there.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_V1 = "v1:"
_V2 = "v2:"
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A stored credential cannot be decrypted with the configured keys."""


class CredentialBox:
    """Encrypts under the current key id; decrypts with any configured key."""

    def __init__(
        self, keys: Mapping[str, bytes], *, current: str, legacy_v1_key: bytes | None = None
    ) -> None:
        for kid, key in keys.items():
            if len(key) != 32 or not kid or ":" in kid:
                raise ValueError(f"credential key {kid!r} must be 32 bytes with an id without ':'")
        if current not in keys:
            raise ValueError(f"current credential key {current!r} is not among the keys")
        self.current = current
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}
        self._legacy = AESGCM(legacy_v1_key) if legacy_v1_key is not None else None

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext`` for the place named by ``context``, under the current key."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_V2}{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def key_id(self, token: str) -> str | None:
        """The key id a stored value was made with (``v1`` for legacy values), or None."""
        if token.startswith(_V1):
            return "v1"
        if token.startswith(_V2):
            kid, sep, _ = token[len(_V2) :].partition(":")
            return kid if sep else None
        return None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already encrypted under the current key."""
        return self.key_id(token) == self.current

    def decrypt(self, token: str, context: str) -> str:
        """Decrypt a value stored at ``context``; ``DecryptionError`` if it cannot be."""
        kid = self.key_id(token)
        if kid == "v1":
            aead, body = self._legacy, token[len(_V1) :]
            if aead is None:
                raise DecryptionError(
                    f"credential for {context} is from before key ids (v1): set "
                    "CREDENTIALS_ENCRYPTION_KEY to read it, or store it again"
                )
        elif kid is not None:
            aead, body = self._aeads.get(kid), token[len(_V2) + len(kid) + 1 :]
            if aead is None:
                raise DecryptionError(
                    f"credential for {context} was encrypted with key {kid}, which is not "
                    "configured: add that master key to ENCRYPTION_OLD_KEYS, or store it again"
                )
        else:
            raise DecryptionError(f"credential for {context} is not in a known format")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise DecryptionError(
                f"credential for {context} cannot be decrypted with key {kid}: a wrong key "
                "or a damaged value; store it again"
            ) from None
        return plain.decode()

    def reencrypt(self, token: str, context: str) -> str | None:
        """``token`` under the current key, or None if it already is (for key rotation)."""
        if self.is_current(token):
            return None
        return self.encrypt(self.decrypt(token, context), context)
