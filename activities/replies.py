"""Reading an emailed reply: is it automatic, who sent it, and what did they decide."""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Literal

ReplyDecision = Literal["approve", "reject", "unclear"]

_APPROVE = {"approve", "approved", "yes", "y", "ok", "okay", "accept", "accepted"}
_REJECT = {"reject", "rejected", "no", "n", "deny", "denied", "decline", "declined"}
_QUOTE_START = re.compile(
    r"^(>|on .+wrote:$|-----\s*original message\s*-----|from:\s|sent from my )", re.IGNORECASE
)
_WORD = re.compile(r"[a-z]+", re.IGNORECASE)
_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


def sender_address(value: str) -> str:
    """The bare, lower-cased address of a From header."""
    return parseaddr(value)[1].strip().lower()


def is_automatic(headers: dict[str, str], sender: str) -> str | None:
    """Why a message is an auto-reply or a bounce (RFC 3834 and common headers), or None."""
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    if lowered.get("auto-submitted", "no") != "no":
        return f"Auto-Submitted: {lowered['auto-submitted']}"
    for header in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if header in lowered and header != "x-auto-response-suppress":
            return f"{header} header"
    if lowered.get("precedence") in _AUTO_PRECEDENCE:
        return f"Precedence: {lowered['precedence']}"
    if "multipart/report" in lowered.get("content-type", ""):
        return "delivery report"
    if sender.startswith(_BOUNCE_SENDERS):
        return f"bounce from {sender}"
    return None


def strip_quoted(text: str) -> str:
    """The reply's own text: everything before the quoted original."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_START.match(line.strip()):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def read_decision(text: str) -> tuple[ReplyDecision, str | None]:
    """The decision on the first non-empty line of the reply, and the note after it.

    Both or neither kind of word on the first line is ``unclear``: the sender is asked.
    """
    own = strip_quoted(text)
    lines = [line.strip() for line in own.split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return "unclear", None
    words = set(_WORD.findall(lines[0].lower()))
    approve, reject = bool(words & _APPROVE), bool(words & _REJECT)
    if approve == reject:
        return "unclear", None
    first_rest = _WORD.sub("", lines[0], count=1).strip(" .,:;!-") if len(words) > 1 else ""
    note = "\n".join([first_rest, *lines[1:]] if first_rest else lines[1:]).strip() or None
    return ("approve" if approve else "reject"), note
