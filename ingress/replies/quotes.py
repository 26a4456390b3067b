"""The reply's own text: everything above the quoted original, a signature or a client's
"Sent from my …" line.

Mail clients mark the quoted original in a handful of ways, all of which start on their own
line: ``>`` quoting, an attribution line ("On … wrote:", wrapped over up to three lines by
Gmail; "Am … schrieb …:", "Le … a écrit :", "El … escribió:" and kin), Outlook's header
block ("From: … / Sent: …", in several languages) under a line of underscores or
"-----Original Message-----", and forwarded-message banners. The first such line ends the
reply's own text. Every pattern here is anchored and linear, so a hostile body costs time
in proportion to its length.
"""

from __future__ import annotations

import re

#: Only the start of a body can hold the reply's own text; longer bodies are cut here.
MAX_CHARS = 100_000
#: An attribution line wrapped by a client spans at most this many lines and characters.
_WRAP_LINES = 3
_WRAP_CHARS = 400

_SPACES = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SEPARATOR = re.compile(
    r"^-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|"
    r"mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|"
    r"forwarded message|begin forwarded message|message transféré|"
    r"weitergeleitete nachricht|mensaje reenviado)\s*-{2,}$"
)
_UNDERSCORES = re.compile(r"^_{10,}$")
_FORWARDED = re.compile(r"^(?:begin forwarded message|anfang der weitergeleiteten nachricht)\s?:$")
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^(?:sent from my |sent from mail for |sent from outlook|sent from yahoo mail|"
    r"sent via |get outlook for |von meinem .{1,40} gesendet|gesendet von meine[mr]? |"
    r"envoyé de mon |envoyé depuis mon |enviado desde mi |inviato da(?:l mio)? )"
)
# Outlook's header block: a "From:" line with another header line right below it.
_HEADER_NAME = (
    r"from|sent|date|to|cc|subject|von|gesendet|datum|an|betreff|de|envoyé|à|objet|"
    r"enviado|fecha|para|asunto|da|inviato|data|a|oggetto|van|verzonden|aan|onderwerp"
)
_HEADER_LINE = re.compile(rf"^\**\s?(?:{_HEADER_NAME})\s?\**\s?:")
_FROM_LINE = re.compile(r"^\**\s?(?:from|von|de|da|van)\s?\**\s?:")
# Attribution lines: (how it starts, a word it contains, how it ends).
_ATTRIBUTIONS = (
    ("on ", " wrote", "wrote:"),
    ("am ", " schrieb", ":"),
    ("le ", " a écrit", ":"),
    ("le ", " a ecrit", ":"),
    ("el ", " escribió", ":"),
    ("el ", " escribio", ":"),
    ("il ", " ha scritto", ":"),
    ("op ", " schreef", ":"),
    ("em ", " escreveu", ":"),
)


def own_text(text: str) -> str:
    """The reply's own text: the lines above the first quote, signature or client banner."""
    lines = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    folded = [_SPACES.sub(" ", line).strip().lower() for line in lines]
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _starts_quote(folded, index, raw=line):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _starts_quote(folded: list[str], index: int, *, raw: str) -> bool:
    line = folded[index]
    if not line:
        return False
    if line.startswith(">") or _SIGNATURE_DELIMITER.match(raw.rstrip("\n")):
        return True
    if _SEPARATOR.match(line) or _UNDERSCORES.match(line) or _FORWARDED.match(line):
        return True
    if _MOBILE_SIGNATURE.match(line):
        return True
    return _header_block(folded, index) or _attribution(folded, index)


def _header_block(folded: list[str], index: int) -> bool:
    """An Outlook-style header block starts here: "From:" and another header below it."""
    if not _FROM_LINE.match(folded[index]):
        return False
    below = [line for line in folded[index + 1 : index + 4] if line][:2]
    return any(_HEADER_LINE.match(line) for line in below)


def _attribution(folded: list[str], index: int) -> bool:
    """An "On … wrote:" line (or its translation) starts here, possibly wrapped."""
    first = folded[index]
    for start, word, end in _ATTRIBUTIONS:
        if not first.startswith(start):
            continue
        window = first
        for offset in range(_WRAP_LINES):
            if offset:
                following = folded[index + offset] if index + offset < len(folded) else ""
                # A wrapped line is never blank, and a later line that starts an
                # attribution of its own is where the quote begins, not this one.
                if not following or following.startswith(start):
                    break
                window = f"{window} {following}"
            if len(window) > _WRAP_CHARS:
                break
            if window.endswith(end) and word in window:
                return True
    return False
