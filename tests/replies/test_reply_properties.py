"""What must never happen, for any reply: an approval with a negation, condition, question,
reject keyword or unusual character on its decision line; a quote changing the decision."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ingress.replies import read_reply
from ingress.replies.decision import APPROVE_WORDS, HEDGES, NEGATIONS, REJECT_WORDS
from tests.replies.samples import (
    apple_mail,
    french,
    german,
    gmail,
    gmail_html,
    iphone,
    outlook,
    outlook_html,
    spanish,
)

WORDS = [
    *sorted(APPROVE_WORDS | REJECT_WORDS | NEGATIONS | HEDGES),
    *("go", "ahead", "please", "thanks", "the", "folder", "do", "I", "would", "this"),
    *("don't", "can't", "won't", "isn't", "n't", "Approve", "APPROVE", "No", "REJECT"),
]
SEPARATORS = [" ", ", ", ". ", "! ", " - ", " \u2014 ", "?", " 👍 ", "\u00a0", "\u200b", "\u202e"]
SEPARATORS += ["!", "~", "\u00ac", "*", '"', "\u201c", "1. ", "(", "#"]
ODD_CHARACTERS = ["\u0430", "\u043e", "\uff41", "\U0001d41a", "\u0301", "\u24dd", "\u200d", "é"]

line_parts = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(SEPARATORS),
        st.sampled_from(ODD_CHARACTERS),
        st.text(max_size=3),
    ),
    max_size=8,
)
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(APPROVE_WORDS)), line_parts, st.text(max_size=40))
@example("accept", ["\r", "after"], "")  # "after" is on the next line: a note
def test_an_approval_line_is_always_plain_and_unqualified(
    keyword: str, parts: list[str], below: str
) -> None:
    line = keyword + "".join(parts)  # an approve keyword first, then anything
    reading = read_reply(f"{line}\n{below}")
    if reading.decision != "approve":
        return
    # Lines as the reader splits them (a lone CR ends a line too: quotes.own_text).
    lines = f"{line}\n{below}".replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next(x.strip() for x in lines if x.strip())
    words = _TOKEN.findall(first.lower().replace("\u2019", "'"))
    assert words and words[0] in APPROVE_WORDS
    blocked = NEGATIONS | HEDGES | REJECT_WORDS
    assert not [w for w in words[1:] if w in blocked or w.endswith("n't")], first
    assert "?" not in first
    assert all(c.isascii() or not (c.isalnum() or c in ODD_CHARACTERS) for c in first), first


@settings(max_examples=300, deadline=None)
@given(line_parts, st.text(max_size=40))
def test_a_line_without_an_approve_keyword_first_never_approves(
    parts: list[str], below: str
) -> None:
    line = "".join(parts)
    first = next((x.strip() for x in f"{line}\n{below}".split("\n") if x.strip()), "")
    # Only quotes, emphasis marks and emoji may stand before the keyword.
    plain = first.lstrip("\"'*_`\u201c\u201d\u2018\u2019\u00ab\u00bb \ufe0f\u200d👍")
    head = _TOKEN.match(plain.lower())
    if head is not None and head.group() in APPROVE_WORDS:
        return
    assert read_reply(f"{line}\n{below}").decision != "approve", first


OWN_TEXTS = [
    "Approve",
    "Yes, go ahead",
    "Do not approve",
    "Reject\nWrong folder.",
    "No",
    "Approve?",
    "",
]
CLIENTS = [gmail, outlook, apple_mail, iphone, german, french, spanish]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(OWN_TEXTS), st.sampled_from(CLIENTS))
def test_the_quoted_original_never_changes_what_a_reply_decides(own: str, client: object) -> None:
    assert callable(client)
    assert read_reply(client(own)) == read_reply(own)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([o for o in OWN_TEXTS if "\n" not in o]), st.booleans())
def test_an_html_only_reply_decides_as_its_text_would(own: str, use_outlook: bool) -> None:
    html = outlook_html(own) if use_outlook else gmail_html(own)
    assert read_reply(None, html).decision == read_reply(own).decision
