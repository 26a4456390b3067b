"""What the approval email says, from its templates (activities/templates/approval_email.*).

The words are pinned as they were before the templates (the email an approver receives
did not change), and every value from the rows is escaped in the HTML part, taken as it
is in the text part, and never read as a template itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from activities.email import EmailActivities, EmailConfig
from activities.email_templates import render_html, render_text
from db.approvals import EmailContext

CONFIG = EmailConfig(
    sender="Agency <approvals@agency.test>",
    inbound_domain="in.agency.test",
    ingress_url="https://ingress.agency.test",
    token_secret="s" * 32,
)
APPROVE = (
    "https://ingress.agency.test/approvals/aiirceirceiucembceirceirceiwsddrubozh2xbnrunorp5gu2ws"
)
REJECT = (
    "https://ingress.agency.test/approvals/amirceirceiucembceirceirceiwsddruc3g6sozbmotl2nnwltkk"
)
ROW: dict[str, Any] = {
    "id": UUID("11111111-1111-4111-8111-111111111111"),
    "job_id": UUID("22222222-2222-4222-8222-222222222222"),
    "action_type": "delete",
    "description": "Delete the 'Old Specs' folder",
    "screenshot_url": "blob:x",
    "status": "pending",
    "approver_email": "kim@example.com",
    "expires_at": datetime(2025, 11, 6, 10, 0, tzinfo=UTC),
    "resend_message_id": None,
    "email_message_id": None,
    "job_title": "Tidy the docs",
    "platform": "Notion",
    "owner_name": "Kim",
}


def compose(kind: str = "request", **row: Any) -> dict[str, Any]:
    """The Resend parameters of the email about an approval row like ``ROW``."""
    activities = EmailActivities(pool=None, config=CONFIG)  # type: ignore[arg-type]
    screenshot = ("image/png", b"\x89PNG")
    return activities._compose(EmailContext(**(ROW | row)), kind, ["<a@x>", "<b@x>"], screenshot)


def test_the_request_email_says_what_it_said_before_the_templates() -> None:
    """Subject, text and HTML, to the character, as the inline version wrote them."""
    params = compose()
    assert params["subject"] == (
        "Approval needed by Thu 06 Nov 2025 10:00 UTC: Delete the 'Old Specs' folder (Notion)"
    )
    assert params["text"] == (
        "Your assistant wants to: Delete the 'Old Specs' folder\n"
        "Action: delete   Platform: Notion\n"
        "Job: Tidy the docs (22222222-2222-4222-8222-222222222222)\n"
        "Decide by: Thu 06 Nov 2025 10:00 UTC. Without a decision by then, the action is not "
        "taken.\n\n"
        "Reply to this email with APPROVE or REJECT on the first line. You may add a note on "
        "the lines below.\n\n"
        "Or open a link (each asks you to confirm):\n"
        f"Approve: {APPROVE}\n"
        f"Reject: {REJECT}\n"
    )
    assert params["html"] == (
        "<p>Your assistant wants to: <strong>Delete the &#x27;Old Specs&#x27; folder</strong>"
        "</p><p>Action: delete &middot; Platform: Notion &middot; Job: Tidy the docs</p>"
        "<p>Decide by <strong>Thu 06 Nov 2025 10:00 UTC</strong>. Without a decision by then, "
        "the action is not taken.</p><p>Reply with <strong>APPROVE</strong> or <strong>REJECT"
        "</strong> on the first line; you may add a note below it.</p>"
        f'<p><a href="{APPROVE}">Approve</a> &middot; <a href="{REJECT}">Reject</a> '
        "(each asks you to confirm)</p>"
        '<p>The page now:</p><img src="cid:screenshot" alt="screenshot" width="640">'
    )
    assert params["headers"] == {"In-Reply-To": "<b@x>", "References": "<a@x> <b@x>"}


def test_a_reminder_says_so_in_its_subject_only() -> None:
    """The reminder's body is the request's; its subject starts with Reminder."""
    request, reminder = compose(), compose("reminder")
    assert reminder["subject"] == "Reminder: approval" + request["subject"].removeprefix("Approval")
    assert (reminder["text"], reminder["html"]) == (request["text"], request["html"])


HOSTILE = [
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "Tom & Jerry &amp; co",
    "$what ${approve_url} $$ $",
    "{0} {what} %(id)s %s",
    "Löschen — 📁\u202e",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["description", "action_type", "platform", "job_title"])
def test_values_from_the_rows_are_escaped_in_html_and_kept_in_text(field: str, value: str) -> None:
    """No value adds markup to the HTML or is read as a placeholder; the text keeps it."""
    params = compose(**{field: value})
    escaped = (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )
    assert escaped in params["html"]
    assert value in params["text"]
    assert "<script" not in params["html"] and "onerror=alert" not in params["html"].replace(
        escaped, ""
    )
    assert params["html"].count("<a ") == 2 and params["html"].count("<img ") == 1
    assert APPROVE in params["text"] and REJECT in params["text"]


def test_a_missing_description_falls_back_to_the_action() -> None:
    """No description: the action says what the assistant wants to do."""
    params = compose(description=None)
    assert "Your assistant wants to: delete\n" in params["text"]
    assert params["subject"].endswith(": delete (Notion)")


def test_without_a_screenshot_the_html_shows_none() -> None:
    """The screenshot's paragraph and attachment come only with a screenshot."""
    activities = EmailActivities(pool=None, config=CONFIG)  # type: ignore[arg-type]
    params = activities._compose(EmailContext(**ROW), "request", [], None)
    assert "cid:screenshot" not in params["html"] and "attachments" not in params
    assert "headers" not in params


def test_templates_name_every_value_they_need() -> None:
    """A value the template names but is not given is an error, not a blank."""
    with pytest.raises(KeyError):
        render_text("approval_email.txt", what="x")
    with pytest.raises(KeyError):
        render_html("approval_email.html", what="x")


def test_html_templates_render_without_line_breaks() -> None:
    """The HTML template's line breaks are for reading; the email's HTML has none."""
    assert "\n" not in compose()["html"]
    assert render_html("approval_email_screenshot.html").startswith("<p>The page now:</p><img")
