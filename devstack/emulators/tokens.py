"""Tokens the emulators issue: a controllable clock, expiry and revocation.

The token emulators (Google OAuth, Meta's token exchange, Threads) and the APIs that
accept their tokens (Google Ads, Meta insights) share one ``Clock``: a test moves it
forward (``advance``) to expire tokens without waiting, and ``revoke`` stands for an owner
removing the app's access. A token the store never issued is not its business: the API
emulators fall back to their own rules for it.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

State = Literal["valid", "expired", "revoked"]


class Clock:
    """Real time plus an offset, or a time set outright."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._fixed: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The emulators' current time (UTC)."""
        with self._lock:
            return self._fixed if self._fixed is not None else datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        """Move time forward (or back, with a negative delta)."""
        with self._lock:
            if self._fixed is not None:
                self._fixed += delta
            else:
                self._offset += delta

    def set(self, when: datetime | None) -> None:
        """Stop time at ``when`` (None: real time again, without offset)."""
        with self._lock:
            self._fixed, self._offset = when, timedelta(0)


@dataclass
class Issued:
    """A token and what the issuer knows of it."""

    token: str = field(repr=False)
    subject: str  # the grant it belongs to (refresh token, user id)
    kind: str  # "access", "short", "long"
    issued_at: datetime
    expires_at: datetime | None
    revoked: int | None = None  # the revocation's code (Meta's subcode), if revoked


class TokenStore:
    """Issued tokens by value, with their subject, expiry and revocation."""

    def __init__(self, clock: Clock, prefix: str) -> None:
        self.clock = clock
        self._prefix = prefix
        self._tokens: dict[str, Issued] = {}
        self._lock = threading.Lock()

    def issue(self, subject: str, kind: str, lifetime: timedelta | None) -> Issued:
        """A new token for ``subject`` living ``lifetime`` (None: never expires)."""
        now = self.clock.now()
        issued = Issued(
            token=self._prefix + secrets.token_urlsafe(24),
            subject=subject,
            kind=kind,
            issued_at=now,
            expires_at=now + lifetime if lifetime is not None else None,
        )
        with self._lock:
            self._tokens[issued.token] = issued
        return issued

    def get(self, token: str) -> Issued | None:
        """What the store knows of ``token`` (None: not one it issued)."""
        with self._lock:
            return self._tokens.get(token)

    def state(self, token: str) -> State | None:
        """valid, expired or revoked; None for a token the store did not issue."""
        issued = self.get(token)
        if issued is None:
            return None
        if issued.revoked is not None:
            return "revoked"
        if issued.expires_at is not None and self.clock.now() >= issued.expires_at:
            return "expired"
        return "valid"

    def revoke(self, subject_or_token: str, code: int = 1) -> int:
        """Revoke a token, or every token of a subject; how many were revoked."""
        with self._lock:
            hit = [
                t
                for t in self._tokens.values()
                if subject_or_token in (t.token, t.subject) and t.revoked is None
            ]
            for issued in hit:
                issued.revoked = code
        return len(hit)

    def issued(self, kind: str | None = None) -> list[Issued]:
        """Every token issued (of one kind), oldest first (inspection)."""
        with self._lock:
            return [t for t in self._tokens.values() if kind in (None, t.kind)]

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._tokens.clear()
