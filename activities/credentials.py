"""Credentials encrypted at rest with AES-256-GCM, decrypted only inside activities.

A ciphertext is ``v1:<base64(nonce || ciphertext || tag)>`` and is bound to where it is
stored (the associated data names the table and row), so it cannot be copied to another
user's row and decrypted there.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1:"
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A stored credential cannot be decrypted with the configured key."""


class CredentialBox:
    """Encrypts and decrypts credentials with one 256-bit key."""

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("CREDENTIALS_ENCRYPTION_KEY is not base64") from None
        if len(key) != 32:
            raise ValueError("CREDENTIALS_ENCRYPTION_KEY must be 32 bytes (base64-encoded)")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext`` for the place named by ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, context: str) -> str:
        """Decrypt a value stored at ``context``; ``DecryptionError`` if it cannot be."""
        if not token.startswith(_VERSION):
            raise DecryptionError(f"credential for {context} is not in a known format")
        try:
            raw = base64.b64decode(token[len(_VERSION) :], validate=True)
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise DecryptionError(
                f"credential for {context} cannot be decrypted: wrong CREDENTIALS_ENCRYPTION_KEY "
                "or a damaged value; store it again"
            ) from None
        return plain.decode()
