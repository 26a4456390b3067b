"""What a reply decides, read from the first line of the reply's own text.

The rules (issue 24): a reply approves only when that line starts with an approve keyword
and holds no negation, hedge, question or reject keyword anywhere, and is written in plain
characters (no look-alike letters, invisible or compatibility characters that could hide a
"not"). It rejects when the line starts with a reject keyword and holds no approve keyword
or question. Everything else is ``unclear``, and the sender is asked again: when in doubt,
never approve.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

ReplyDecision = Literal["approve", "reject", "delegate", "unclear"]

APPROVE_WORDS = frozenset(
    {"approve", "approved", "yes", "y", "ok", "okay", "accept", "accepted", "confirm",
     "confirmed", "lgtm"}
)  # fmt: skip
REJECT_WORDS = frozenset(
    {"reject", "rejected", "no", "n", "nope", "deny", "denied", "decline", "declined",
     "refuse", "refused"}
)  # fmt: skip
NEGATIONS = frozenset(
    {"not", "no", "never", "nope", "nor", "neither", "none", "nothing", "nobody", "nah",
     "nay", "cannot", "cant", "dont", "wont", "isnt", "arent", "wasnt", "werent", "didnt",
     "doesnt", "havent", "hasnt", "hadnt", "shouldnt", "wouldnt", "couldnt", "mustnt",
     "neednt", "aint", "without"}
)  # fmt: skip
#: Words that make an approval conditional or doubtful: the step runs whole or not at all.
HEDGES = frozenset(
    {"but", "except", "unless", "only", "if", "however", "although", "though", "maybe",
     "perhaps", "possibly", "probably", "unsure", "wait", "hold", "later", "stop", "cancel",
     "pause", "partially", "partly", "hmm", "think", "consider", "check", "look", "review",
     "discuss", "ask", "tomorrow", "first", "before", "after", "until", "when",
     "delegate", "delegated", "forward", "forwarded"}
)  # fmt: skip
#: A second line that starts with one of these continues the decision line ("Approve /
#: but not the archive"), so it is read with it.
CONTINUATIONS = frozenset(
    {"but", "except", "unless", "only", "not", "however", "although", "though", "if", "nor",
     "without", "and"}
)  # fmt: skip

#: "DELEGATE alice@agency.com": hand the decision to a colleague (issue 27).
DELEGATE_WORDS = frozenset({"delegate"})
#: One plain address (ASCII only: a look-alike letter could name someone else), with
#: nothing else on the line but "to" before it and angle brackets around it.
_ADDRESS = re.compile(
    r"(?:to\s+)?<?([a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)>?",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})
_QUESTION_MARKS = ("?", "\u00bf", "\uff1f", "\u2047", "\u2048", "\u2049", "\u203d")
#: Characters after a keyword that glue it to more letters ("approve-ish", "ok_then").
_GLUE = "-_'/"
#: Invisible characters allowed only between emoji (ZWJ sequences such as 👨‍💻).
_EMOJI_JOINER = "\u200d"
#: What may stand before the first word: quotes, emphasis marks and emoji; not "!", "~",
#: "¬" or other punctuation that could negate or number it.
_LEADING = frozenset("\"'*_`\u201c\u201d\u2018\u2019\u00ab\u00bb \ufe0f\u200d")


@dataclass(frozen=True)
class ReplyReading:
    """The decision a reply states, its note, and why a reply is unclear."""

    decision: ReplyDecision
    note: str | None
    reason: str
    delegate_to: str | None = None  # the colleague a "DELEGATE <address>" line names


def read_decision_text(own: str) -> ReplyReading:
    """Read the decision from the first non-empty line of a reply's own text."""
    lines = [line.strip() for line in own.split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return ReplyReading("unclear", None, "the reply has no text of its own")
    first = _plain_spaces(lines[0])
    words = _WORD.findall(first.lower().translate(_APOSTROPHES))
    if not words:
        return ReplyReading("unclear", None, "the first line has no words")
    head = _first_word(first)
    if isinstance(head, str):
        return ReplyReading("unclear", None, head)
    keyword, rest = head
    if any(mark in first for mark in _QUESTION_MARKS):
        return ReplyReading("unclear", None, "the first line is a question")
    note = "\n".join([rest, *lines[1:]] if rest else lines[1:]).strip() or None
    if keyword in APPROVE_WORDS:
        if trick := _unplain(first):
            return ReplyReading("unclear", None, trick)
        if doubt := _doubt(words[1:] + _continuation(lines[1:2])):
            return ReplyReading("unclear", None, doubt)
        return ReplyReading("approve", note, "starts with an approve keyword")
    if keyword in DELEGATE_WORDS:
        return _delegation(first, rest, note)
    if keyword in REJECT_WORDS:
        if both := sorted(set(words[1:]) & APPROVE_WORDS):
            return ReplyReading("unclear", None, f"both kinds of keyword ({both[0]!r})")
        return ReplyReading("reject", note, "starts with a reject keyword")
    return ReplyReading("unclear", None, f"the first word {keyword!r} is not a keyword")


def _delegation(first: str, rest: str, note: str | None) -> ReplyReading:
    """A delegation line: the keyword, then exactly one address and nothing else."""
    if trick := _unplain(first):
        return ReplyReading("unclear", None, trick)
    match = _ADDRESS.fullmatch(rest.strip().rstrip("."))
    if match is None:
        return ReplyReading("unclear", None, "a delegation names exactly one address")
    address = match.group(1).lower()
    remaining = note.split("\n", 1)[1].strip() if note and "\n" in note else None
    if _continuation((remaining or "").split("\n")[:1]):
        return ReplyReading("unclear", None, "the next line puts a condition on the delegation")
    return ReplyReading("delegate", remaining or None, "delegates", delegate_to=address)


def _plain_spaces(line: str) -> str:
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in line)


def _first_word(line: str) -> tuple[str, str] | str:
    """The line's first word (lower-cased) and the text after it, or why the line does not
    start with a word: only spaces and symbols (quotes, asterisks, emoji) may precede it."""
    folded = line.translate(_APOSTROPHES)
    match = re.search(r"[A-Za-z]+(?:'[A-Za-z]+)*", folded)
    if match is None or not all(_leads(c) for c in folded[: match.start()]):
        return "the first line does not start with a plain word"
    after = folded[match.end() :]
    if after[:1] and (after[0].isalnum() or after[0] in _GLUE):
        return f"the first word runs on into {after[:1]!r}"  # "approve-ish", "Approve2"
    rest = line[match.end() :].strip(" .,:;!-\u2013\u2014")
    return match.group().lower(), rest


def _leads(char: str) -> bool:
    return char in _LEADING or unicodedata.category(char) in ("So", "Sk")


def _continuation(second: list[str]) -> list[str]:
    """The words of a second line that continues the decision line, else none."""
    words = _WORD.findall(second[0].lower().translate(_APOSTROPHES)) if second else []
    return words if words and words[0] in CONTINUATIONS else []


def _doubt(words: list[str]) -> str | None:
    """The first negation, hedge or keyword of either kind after the first word."""
    for word in words:
        if word in NEGATIONS or word.endswith("n't"):
            return f"a negation ({word!r}) on the decision line"
        if word in REJECT_WORDS:
            return f"both kinds of keyword ({word!r})"
        if word in HEDGES:
            return f"a condition ({word!r}) on the decision line"
    return None


def _unplain(line: str) -> str | None:
    """Why a line is not plain enough to approve on: look-alike or compatibility letters,
    invisible or direction-changing characters (any of which could hide a negation)."""
    for index, char in enumerate(line):
        if char.isascii():
            continue
        category = unicodedata.category(char)
        if char == _EMOJI_JOINER:
            neighbours = line[index - 1 : index] + line[index + 1 : index + 2]
            if len(neighbours) == 2 and not any(c.isascii() for c in neighbours):
                continue
            return "an invisible joiner between letters"
        if category[0] in "LN" or category == "Mc":
            return f"a non-ASCII letter or digit (U+{ord(char):04X})"
        if category in ("Cf", "Co", "Cn", "Cs", "Cc"):
            return f"an invisible or unassigned character (U+{ord(char):04X})"
        if category[0] == "M" and not _emoji_modifier(char):
            return f"a combining mark (U+{ord(char):04X})"
        if unicodedata.normalize("NFKC", char) != char and char != "\u2026":
            return f"a compatibility character (U+{ord(char):04X})"
    return None


def _emoji_modifier(char: str) -> bool:
    """Variation selectors and the combining keycap that emoji are written with."""
    return char in ("\ufe0e", "\ufe0f", "\u20e3")
