"""Every workflow payload encrypted: the one data converter of every client, worker and
replayer.

Payloads (inputs, results, signals, updates, queries, memos, summaries, heartbeat details,
failure messages and stack traces) leave the process as AES-256-GCM ciphertexts with
``encoding: binary/encrypted`` and the master key's id in their metadata; the Temporal
server stores only those. Decoding picks the key by that id, so payloads made before a
key rotation still decode while their master key is in ``ENCRYPTION_OLD_KEYS``. Payloads
that are not ours (histories recorded before encryption) pass through unchanged. Search
attributes bypass codecs: they hold ids and statuses only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from workers.keys import Keyring, Use

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


class PayloadDecryptError(ValueError):
    """An encrypted payload cannot be decrypted with the configured keys."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload, under the current key id."""

    def __init__(self, keys: Mapping[str, bytes], *, current: str) -> None:
        super().__init__()
        if current not in keys:
            raise ValueError(f"current payload key {current!r} is not among the keys")
        self.current = current
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}

    @classmethod
    def from_keyring(cls, keyring: Keyring) -> EncryptionCodec:
        """The codec of a keyring: payload keys of the current and earlier master keys."""
        return cls(keyring.derived(Use.PAYLOADS), current=keyring.current.kid)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload under the current key."""
        kid = self.current.encode()
        aead = self._aeads[self.current]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = aead.encrypt(nonce, payload.SerializeToString(), kid)  # the id is bound
            encoded.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: kid}, data=nonce + sealed)
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt our payloads; pass through the others (recorded before encryption)."""
        return [self._decode_one(p) if is_encrypted(p) else p for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        kid = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        aead = self._aeads.get(kid)
        if aead is None:
            raise PayloadDecryptError(
                f"payload encrypted with key {kid or '(none)'}, which is not configured "
                "(add its master key to ENCRYPTION_OLD_KEYS)"
            )
        data = payload.data
        try:
            plain = aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise PayloadDecryptError(f"payload with key {kid} is damaged or forged") from None
        return Payload.FromString(plain)


def is_encrypted(payload: Payload) -> bool:
    """Whether a payload is one of ours (encrypted)."""
    return payload.metadata.get("encoding") == ENCODING


def data_converter(keyring: Keyring) -> DataConverter:
    """The data converter of every client, worker and replayer: pydantic JSON, encrypted.

    Failure messages and stack traces are moved into an encrypted payload too (they can
    quote what an activity saw).
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec.from_keyring(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
