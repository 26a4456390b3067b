"""Signed approval tokens for reply addresses and approve/reject links.

A token names one approval, a purpose (reply, approve link, reject link) and an expiry,
and carries an HMAC-SHA256 (truncated to 96 bits) over those and the expected
approver's address, keyed by the approval-token key (derived from the master key, see
``workers/keys.py``). It fits in an email local part (≤ 64 characters, case-insensitive
base32), so the per-approval Reply-To is ``approval+<token>@<inbound domain>``. The
approver is bound by the MAC, not spelled out: verifying needs the approver recorded on
the approval row, so a token cannot be moved to another approval or another approver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from uuid import UUID

_MAC_BYTES = 12  # 96 bits: unguessable online, and the address stays ≤ 64
_LAYOUT = struct.Struct(">B16sI")  # purpose, approval id, expiry (unix seconds)
REPLY_PREFIX = "approval+"
_ADDRESS = re.compile(r"approval\+([a-z2-7]{40,80})@", re.IGNORECASE)


class SigningKeys(str):
    """An HMAC key (its string value, which signs) and the earlier keys that still verify.

    A ``str`` so that code which only signs (email links, webhook URLs) takes it as the
    plain secret; verification tries every key, so a token made before a key rotation
    stays valid until it expires.
    """

    older: tuple[str, ...]

    def __new__(cls, current: str, older: Iterable[str] = ()) -> SigningKeys:
        keys = super().__new__(cls, current)
        keys.older = tuple(k for k in older if k and k != current)
        return keys

    @property
    def current(self) -> str:
        """The key that signs, as a plain string."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"SigningKeys(<{1 + len(self.older)} keys>)"


def verifying_secrets(secret: str) -> tuple[str, ...]:
    """Every secret a token may have been signed with: all of a ``SigningKeys``."""
    if isinstance(secret, SigningKeys):
        return (secret.current, *secret.older)
    return (secret,)


class Purpose(IntEnum):
    """What a token may be used for."""

    REPLY = 1
    APPROVE_LINK = 2
    REJECT_LINK = 3


class InvalidToken(ValueError):
    """The token is malformed, forged, expired or bound to someone else."""


@dataclass(frozen=True)
class ApprovalToken:
    """The verified content of a token."""

    approval_id: UUID
    purpose: Purpose
    expires_at: datetime


def _mac(secret: bytes, body: bytes, approver: str) -> bytes:
    msg = body + b"\x00" + approver.strip().lower().encode()
    return hmac.new(secret, msg, hashlib.sha256).digest()[:_MAC_BYTES]


def sign(
    secret: str, approval_id: UUID, approver: str, purpose: Purpose, expires_at: datetime
) -> str:
    """A token for ``approval_id`` usable by ``approver`` until ``expires_at``."""
    body = _LAYOUT.pack(int(purpose), approval_id.bytes, int(expires_at.timestamp()))
    raw = body + _mac(secret.encode(), body, approver)
    return base64.b32encode(raw).decode().rstrip("=").lower()


def peek(token: str) -> ApprovalToken:
    """Decode a token without trusting it (to find which approval row to verify against)."""
    try:
        padded = token.upper() + "=" * (-len(token) % 8)
        raw = base64.b32decode(padded)
        purpose, approval_bytes, expiry = _LAYOUT.unpack(raw[: _LAYOUT.size])
        if len(raw) != _LAYOUT.size + _MAC_BYTES:
            raise ValueError("wrong length")
        return ApprovalToken(
            approval_id=UUID(bytes=approval_bytes),
            purpose=Purpose(purpose),
            expires_at=datetime.fromtimestamp(expiry, tz=UTC),
        )
    except (ValueError, struct.error) as exc:
        raise InvalidToken("malformed approval token") from exc


def verify(
    secret: str, token: str, approver: str, *, purpose: Purpose, now: datetime
) -> ApprovalToken:
    """Check the MAC against ``approver``, the purpose and the expiry; return the content."""
    content = peek(token)
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    candidates = [_mac(s.encode(), body, approver) for s in verifying_secrets(secret)]
    if not any(hmac.compare_digest(mac, candidate) for candidate in candidates):
        raise InvalidToken("approval token signature does not match")
    if content.purpose is not purpose:
        raise InvalidToken(f"approval token is for {content.purpose.name}, not {purpose.name}")
    if now >= content.expires_at:
        raise InvalidToken("approval token has expired")
    return content


def reply_address(token: str, domain: str) -> str:
    """The per-approval Reply-To address."""
    return f"{REPLY_PREFIX}{token}@{domain}"


def find_reply_token(addresses: list[str]) -> str | None:
    """The token in the first recipient address that carries one."""
    for address in addresses:
        if match := _ADDRESS.search(address):
            return match.group(1).lower()
    return None


def verify_any(
    secret: str, token: str, approvers: Iterable[str], *, purpose: Purpose, now: datetime
) -> tuple[ApprovalToken, str]:
    """Verify a token of a gate with several approvers: the content and the approver it is
    bound to (each approver's token is theirs alone). Refused as ``verify`` refuses."""
    for approver in dict.fromkeys(a.strip().lower() for a in approvers if a):
        try:
            return verify(secret, token, approver, purpose=purpose, now=now), approver
        except InvalidToken as refused:
            if "signature" not in str(refused):  # theirs, but expired or for another use
                raise
    raise InvalidToken("approval token signature does not match")
