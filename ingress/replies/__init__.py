"""Reading an emailed reply: who sent it, whether a machine did, whether the sender's
domain passed authentication, and what the person decided.

The decision rules are in ``decision.py``; the reply's own text is found in ``quotes.py``
(plain text) and ``html_text.py`` (HTML-only replies).
"""

from __future__ import annotations

from ingress.replies.auth_results import sender_failure
from ingress.replies.automatic import is_automatic, sender_address, sender_domain
from ingress.replies.decision import ReplyDecision, ReplyReading, read_decision_text
from ingress.replies.html_text import visible_text
from ingress.replies.quotes import own_text

__all__ = [
    "ReplyDecision",
    "ReplyReading",
    "is_automatic",
    "own_text",
    "read_reply",
    "reply_own_text",
    "sender_address",
    "sender_domain",
    "sender_failure",
    "visible_text",
]


def reply_own_text(text: str | None, html: str | None) -> str:
    """The reply's own text: from its plain-text part, else from its HTML's visible text."""
    own = own_text(text) if text else ""
    if not own and html:
        own = own_text(visible_text(html))
    return own


def read_reply(text: str | None, html: str | None = None) -> ReplyReading:
    """The decision a received reply states (see ``decision.py`` for the rules)."""
    return read_decision_text(reply_own_text(text, html))
