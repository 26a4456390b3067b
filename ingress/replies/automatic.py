"""Who sent a reply, and whether a machine sent it (auto-replies and bounces)."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr

_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


def sender_address(value: str) -> str:
    """The bare, lower-cased address of a From header."""
    return parseaddr(value)[1].strip().lower()


def sender_domain(address: str) -> str:
    """The domain of a bare address ('' when it has none)."""
    return address.rpartition("@")[2].strip().rstrip(".").lower() if "@" in address else ""


def is_automatic(headers: Mapping[str, str], sender: str) -> str | None:
    """Why a message is an auto-reply or a bounce (RFC 3834 and common headers), or None."""
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    if lowered.get("auto-submitted", "no") != "no":
        return f"Auto-Submitted: {lowered['auto-submitted']}"
    for header in ("x-autoreply", "x-autorespond"):
        if header in lowered:
            return f"{header} header"
    if lowered.get("precedence") in _AUTO_PRECEDENCE:
        return f"Precedence: {lowered['precedence']}"
    if "multipart/report" in lowered.get("content-type", ""):
        return "delivery report"
    if sender.startswith(_BOUNCE_SENDERS):
        return f"bounce from {sender}"
    return None
