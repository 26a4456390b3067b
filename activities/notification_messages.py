"""The words of a notification: seed 002's message shape, adapted per event.

Seed 002's template is ``🔄 Request *{{request_title}}* status changed from
`{{old_status}}` to `{{new_status}}```; ours names what changed (a job, a generation, a
sync, an approval email, a connection), adds the reason on a second line, and escapes
every value (Slack's ``<``, ``>`` and ``&``; HTML in the email).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activities import slack
from activities.email_templates import render_html, render_text

_ICONS = {"failed": "❌", "nsfw": "🚫", "partial": "⚠️", "bounced": "📭", "escalated": "⏫"}
_NOUNS = {  # by the event type, else its first part
    "approval.escalated": "Approval of",
    "job": "Job",
    "approval": "Approval email for",
    "generation": "Generation",
    "sync": "Metric sync",
    "connection": "Connection",
}
_MAX_TITLE = 150
_MAX_REASON = 500


@dataclass(frozen=True)
class Message:
    """One notification in the words of each channel."""

    slack_text: str
    subject: str
    text: str
    html: str


def _clip(value: object, limit: int) -> str:
    text = " ".join(str(value or "").split())  # one line: no forged second line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(value: str) -> str:
    """A status inside Slack's inline code (a backtick would end it)."""
    return value.replace("`", "'")


def compose(event_type: str, data: dict[str, Any]) -> Message:
    """The message of an event from its stored data (title, statuses, reason)."""
    kind = event_type.partition(".")[0]
    noun = _NOUNS.get(event_type) or _NOUNS.get(kind, kind.replace("_", " ").capitalize())
    title = _clip(data.get("title") or "untitled", _MAX_TITLE)
    old, new = _clip(data.get("old_status"), 100), _clip(data.get("new_status"), 100)
    reason = _clip(data.get("reason"), _MAX_REASON)
    icon = _ICONS.get(new, "🔄")
    slack_text = (
        f"{icon} {noun} *{slack.escape(title.replace('*', ''))}* status changed from "
        f"`{slack.escape(_code(old))}` to `{slack.escape(_code(new))}`"
    )
    if reason:
        slack_text += f"\n>{slack.escape(reason)}"
    line = f"{icon} {noun} {title} status changed from {old} to {new}"
    words = {
        "icon": icon,
        "noun": noun,
        "title": title,
        "old_status": old,
        "new_status": new,
        "reason": reason,
        "what_to_hear": event_type,
    }
    return Message(
        slack_text=slack_text,
        subject=_clip(f"{noun} {title}: {new}", 200),
        text=render_text(
            "notification_email.txt",
            line=line,
            reason_line=reason,
            what_to_hear=event_type,
        ),
        html=render_html("notification_email.html", **words),
    )
