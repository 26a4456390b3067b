"""The tests' encryption keys and data converter: every test client, worker and replayer
uses this one converter (the worker's, ``workers/codec.py``), so payloads are encrypted
for real in every test.

The master key is fixed, not random: worker processes a test starts get it through
their settings, and histories recorded with ``RECORD_HISTORIES=1`` must decrypt when
``tests/test_replay.py`` replays them later.
"""

from __future__ import annotations

import base64
import hashlib

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from workers.codec import data_converter
from workers.keys import Keyring, MasterKey

TEST_MASTER_KEY = base64.b64encode(
    hashlib.sha256(b"agency-orchestrator test master key").digest()
).decode()
TEST_KEYRING = Keyring(MasterKey(base64.b64decode(TEST_MASTER_KEY)))
CONVERTER = data_converter(TEST_KEYRING)


def payloads_in(message: Message) -> list[Payload]:
    """Every ``Payload`` anywhere inside a protobuf message (a history event, say)."""
    found: list[Payload] = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                found += payloads_in(item)
    return found


async def readable_history(history: WorkflowHistory) -> str:
    """A history as an operator with the codec reads it: every payload decrypted, as text."""
    assert CONVERTER.payload_codec is not None
    payloads = [p for event in history.events for p in payloads_in(event)]
    decoded = await CONVERTER.payload_codec.decode(payloads)
    return "\n".join(p.data.decode("utf-8", "replace") for p in decoded)
