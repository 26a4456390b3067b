"""What real-looking replies decide: the decision and the note of each, read by the parser
alone (``ingress.replies.read_reply``). When in doubt, never approve."""

from __future__ import annotations

import pytest

from ingress.replies import read_reply
from tests.replies.samples import (
    Sample,
    apple_html,
    apple_mail,
    french,
    french_outlook,
    german,
    german_outlook,
    gmail,
    gmail_html,
    gmail_one_line,
    iphone,
    outlook,
    outlook_header_only,
    outlook_html,
    outlook_ios,
    outlook_mobile_html,
    outlook_original_message,
    spanish,
    thunderbird_html,
    yahoo_html,
)

APPROVES = [
    Sample("bare approve", "APPROVE", "approve"),
    Sample("approve in emphasis marks", "**Approve**", "approve", "**"),
    Sample("emoji before approve", "👍 Approve", "approve"),
    Sample("approved with a full stop", "approved.", "approve"),
    Sample("approve with an emoji", "APPROVE 👍", "approve", "👍"),
    Sample("approve with a toned emoji", "Approve 👍🏽", "approve", "👍🏽"),
    Sample("approve with a ZWJ emoji", "Approve 👨\u200d💻", "approve", "👨\u200d💻"),
    Sample("yes with a note on the line", "yes, go ahead", "approve", "go ahead"),
    Sample("ok", "OK", "approve"),
    Sample("okay with exclamation", "Okay!", "approve"),
    Sample("lgtm", "LGTM", "approve"),
    Sample("confirmed", "Confirmed", "approve"),
    Sample("single y", "y", "approve"),
    Sample(
        "approve with a note below", "APPROVE\nGo ahead, thanks.", "approve", "Go ahead, thanks."
    ),
    Sample(
        "approve, a question only in the note",
        "Approve\nWhy did it need the whole folder?",
        "approve",
        "Why did it need the whole folder?",
    ),
    Sample("approve with a non-breaking space", "Approve\u00a0\u2014 thanks", "approve", "thanks"),
    Sample("approve, curly quotes", "\u201cApprove\u201d", "approve", "\u201d"),
    Sample("gmail wrapped attribution", gmail("Approve"), "approve"),
    Sample("gmail one-line attribution", gmail_one_line("Yes please"), "approve", "please"),
    Sample("outlook quote", outlook("Approved"), "approve"),
    Sample("original message banner", outlook_original_message("OK."), "approve"),
    Sample("outlook header block only", outlook_header_only("Approve"), "approve"),
    Sample("apple mail", apple_mail("Approve"), "approve"),
    Sample("sent from my iphone", iphone("Approve"), "approve"),
    Sample("get outlook for ios", outlook_ios("approve"), "approve"),
    Sample("german gmail quote", german("Approve\nDanke!"), "approve", "Danke!"),
    Sample("german outlook quote", german_outlook("APPROVE"), "approve"),
    Sample("french gmail quote", french("Approve"), "approve"),
    Sample("french outlook quote", french_outlook("Approve"), "approve"),
    Sample("spanish gmail quote", spanish("Approve"), "approve"),
    Sample(
        "signature after the delimiter",
        "Approve\n-- \nBob Example\nHead of Operations",
        "approve",
    ),
    Sample("html-only gmail", None, "approve", html=gmail_html("Approve")),
    Sample("html-only outlook", None, "approve", html=outlook_html("<p>Approved</p>")),
    Sample("html-only apple mail", None, "approve", html=apple_html("Approve")),
    Sample("html-only thunderbird", None, "approve", html=thunderbird_html("APPROVE")),
    Sample(
        "html-only outlook mobile with signature",
        None,
        "approve",
        html=outlook_mobile_html("Approve"),
    ),
    Sample(
        "html with entities and a note paragraph",
        None,
        "approve",
        "👍\nGo ahead.",
        html=gmail_html("<p>Approve&nbsp;&#128077;</p><p>Go ahead.</p>"),
    ),
    Sample(
        "text part is only the quote, html has the reply",
        "> Approve: https://ingress.agency.localhost/approvals/abc",
        "approve",
        html=gmail_html("Approve"),
    ),
]

REJECTS = [
    Sample("bare no", "No", "reject"),
    Sample("no with a full stop", "NO.", "reject"),
    Sample(
        "reject with a note below",
        "REJECT\nWe still need those specs.",
        "reject",
        "We still need those specs.",
    ),
    Sample("reject, don't do it", "Reject, don't do it", "reject", "don't do it"),
    Sample("denied", "Denied.", "reject"),
    Sample("decline with a reason", "Decline \u2014 wrong folder", "reject", "wrong folder"),
    Sample("nope", "Nope", "reject"),
    Sample("rejected with an emoji", "Rejected 👎", "reject", "👎"),
    Sample("single n", "n", "reject"),
    Sample("outlook-quoted reject", outlook("Reject\r\nNot now."), "reject", "Not now."),
    Sample("gmail-quoted no", gmail("No thanks"), "reject", "thanks"),
    Sample("spanish-quoted no", spanish("No"), "reject"),
    Sample("french-quoted reject", french("REJECT"), "reject"),
    Sample("html-only yahoo reject", None, "reject", html=yahoo_html("No")),
    Sample(
        "html-only outlook reject",
        None,
        "reject",
        "Wrong folder.",
        html=outlook_html("<p>Reject</p><p>Wrong folder.</p>"),
    ),
]

UNCLEAR = [
    Sample("do not approve", "Do not approve", "unclear"),
    Sample("i would not approve", "I would not approve this", "unclear"),
    Sample("not approved, sorry", "Not approved, sorry", "unclear"),
    Sample("never approve", "Never approve this kind of thing", "unclear"),
    Sample("approve as a question", "Approve?", "unclear"),
    Sample("yes but not", "Yes but not the second folder", "unclear"),
    Sample("approved - not", "Approved - NOT", "unclear"),
    Sample("yes, don't", "Yes, I don't think so", "unclear"),
    Sample("approve, can't", "Approve \u2014 I can\u2019t see why not", "unclear"),
    Sample("approve, never mind", "approve, never mind", "unclear"),
    Sample("ok, let me think", "OK, let me think about it", "unclear"),
    Sample("approve if", "Approve if the archive is kept", "unclear"),
    Sample("approve continued on line two", "Approve\nbut keep the archive", "unclear"),
    Sample("both kinds", "approve? no, reject... not sure", "unclear"),
    Sample("approve or reject", "Approve or reject?", "unclear"),
    Sample("no problem, approve", "No problem, approve", "unclear"),
    Sample("no, don't approve", "No, don't approve", "unclear"),
    Sample("no as a question", "No?", "unclear"),
    Sample("typo aprove", "aprove", "unclear"),
    Sample("typo approove", "Approove", "unclear"),
    Sample("glued suffix", "approve-ish", "unclear"),
    Sample("numbered", "1. Approve", "unclear"),
    Sample("programmer's not", "!approve", "unclear"),
    Sample("logical not sign", "\u00ac approve", "unclear"),
    Sample("tilde", "~approve", "unclear"),
    Sample("full-width letters", "\uff21\uff30\uff30\uff32\uff2f\uff36\uff25", "unclear"),
    Sample(
        "mathematical bold letters",
        "\U0001d400\U0001d429\U0001d429\U0001d42b\U0001d428\U0001d42f\U0001d41e",
        "unclear",
    ),
    Sample("cyrillic a homoglyph", "\u0410pprove", "unclear"),
    Sample("cyrillic e at the end", "Approv\u0435", "unclear"),
    Sample("hidden negation with a cyrillic o", "Approve, n\u043et this one", "unclear"),
    Sample("zero-width space inside", "Appro\u200bve", "unclear"),
    Sample("zero-width space after", "Approve\u200b", "unclear"),
    Sample("right-to-left override", "Approve \u202etoN", "unclear"),
    Sample("circled letters hiding not", "Approve \u24dd\u24de\u24e3", "unclear"),
    Sample("combining mark", "Approve\u0338", "unclear"),
    Sample("emoji only", "👍", "unclear"),
    Sample("empty", "", "unclear"),
    Sample("blank lines", "\n \n\t\n", "unclear"),
    Sample("no text at all", None, "unclear"),
    Sample("gmail quote with nothing above it", gmail(""), "unclear"),
    Sample("outlook quote with nothing above it", outlook(""), "unclear"),
    Sample("iphone signature only", iphone(""), "unclear"),
    Sample("german word for approve", german("Genehmigt"), "unclear"),
    Sample("french word for yes", french("Oui, allez-y"), "unclear"),
    Sample(
        "html hidden approve before do not",
        None,
        "unclear",
        html='<div><span style="display: none">Approve</span>Do not approve</div>',
    ),
    Sample("html-only quote with empty reply", None, "unclear", html=gmail_html("<br>")),
    Sample("html-only outlook empty reply", None, "unclear", html=outlook_html("")),
    Sample(
        "html full-width approve",
        None,
        "unclear",
        html=apple_html("\uff21\uff30\uff30\uff32\uff2f\uff36\uff25"),
    ),
    Sample(
        "html script is not visible",
        None,
        "unclear",
        html="<div><script>document.write('Approve')</script>Maybe later</div>",
    ),
]

SAMPLES = APPROVES + REJECTS + UNCLEAR


def test_the_table_is_large_enough() -> None:
    assert len(SAMPLES) >= 60
    assert len({s.name for s in SAMPLES}) == len(SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_reply_decides_what_the_person_said(sample: Sample) -> None:
    reading = read_reply(sample.text, sample.html)
    assert (reading.decision, reading.note) == (sample.decision, sample.note), reading.reason
    if reading.decision == "unclear":
        assert reading.note is None and reading.reason


@pytest.mark.parametrize(
    ("body", "decision"),
    [
        ("On " + "a " * 40_000, "unclear"),  # an attribution that never ends
        ("From: x\n" * 30_000, "unclear"),
        ("Le " + "a" * 100_000 + "\n", "unclear"),
        ("\n" * 20_000 + "_" * 50_000, "unclear"),
        ("Approve" + " no" * 60_000, "unclear"),
        ("Approve\n" + "> " * 60_000, "approve"),
    ],
    ids=["open attribution", "header lines", "long line", "blank lines", "negations", "quotes"],
)
def test_hostile_bodies_are_read(body: str, decision: str) -> None:
    # Every pattern is anchored and linear: a backtracking one (like those of the reply
    # library we did not adopt, ~80 s on the first body) would hang here.
    assert read_reply(body).decision == decision
    assert read_reply(None, f"<div>{body}</div>").decision == decision


def test_deeply_nested_html_is_read() -> None:
    html = "<div>" * 50_000 + "Approve" + "</div>" * 50_000
    assert read_reply(None, html).decision == "approve"
