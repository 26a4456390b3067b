"""The visible text a person wrote in an HTML reply, above the quoted original.

Parsed with the standard library's tolerant ``html.parser``. Text inside hidden elements
(``display:none``, ``hidden``, zero font size, …), scripts, styles and signatures is not
visible and is dropped. The first quote container a client writes (``<blockquote>``,
Gmail's ``gmail_quote``, Outlook's ``divRplyFwdMsg``/``appendonsend``, Yahoo's
``yahoo_quoted``, Thunderbird's ``moz-cite-prefix``, Apple Mail's ``type="cite"``, …) ends
the reply's own text, as the first quote line does in a plain-text reply.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Only the start of a body can hold the reply's own text; longer bodies are cut here.
MAX_CHARS = 500_000

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
_BLOCK = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
     "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
     "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot",
     "th", "thead", "tr", "ul"}
)  # fmt: skip
_INVISIBLE_TAGS = frozenset(
    {"head", "script", "style", "template", "title", "noscript", "object", "iframe"}
)
_QUOTE_IDS = frozenset(
    {"divrplyfwdmsg", "appendonsend", "x_divrplyfwdmsg", "x_appendonsend", "olk_src_body_section"}
)
_QUOTE_CLASSES = frozenset(
    {
        "gmail_quote",
        "gmail_quote_container",
        "gmail_attr",
        "yahoo_quoted",
        "moz-cite-prefix",
        "outlookmessageheader",
        "protonmail_quote",
        "zmail_extra",
    }
)
_SIGNATURE_IDS = frozenset({"signature", "ms-outlook-mobile-signature", "applemailsignature"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "gmail_signature_prefix", "moz-signature"})
_HIDDEN_STYLE = re.compile(
    r"display:none|visibility:hidden|mso-hide:all|"
    r"(?:^|;)(?:font-size|max-height|opacity):0(?:\.0+)?(?:px|pt|em|rem|%)?(?:;|$)"
)
_SPACES = re.compile(r"[ \t\n\r\f]+")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, hides its content)
        self.open_counts: dict[str, int] = {}
        self.hidden_depth = 0
        self.quoted = False
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.quoted:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        ident = values.get("id", "").strip().lower()
        classes = set(values.get("class", "").lower().split())
        if (
            tag == "blockquote"
            or ident in _QUOTE_IDS
            or classes & _QUOTE_CLASSES
            or values.get("type", "").lower() == "cite"
        ):
            self.quoted = True  # the original starts here: nothing after it is the reply's
            return
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag in _VOID:
            return
        style = re.sub(r"\s+", "", values.get("style", "").lower())
        hides = (
            tag in _INVISIBLE_TAGS
            or "hidden" in values
            or ident in _SIGNATURE_IDS
            or bool(classes & _SIGNATURE_CLASSES)
            or bool(_HIDDEN_STYLE.search(style))
        )
        self.stack.append((tag, hides))
        self.open_counts[tag] = self.open_counts.get(tag, 0) + 1
        self.hidden_depth += hides
        self.pre_depth += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and not self.quoted:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.quoted or not self.open_counts.get(tag):
            return  # a stray end tag closes nothing
        while self.stack:
            open_tag, hides = self.stack.pop()
            self.open_counts[open_tag] -= 1
            self.hidden_depth -= hides
            self.pre_depth -= open_tag == "pre"
            if open_tag == tag:
                break
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.quoted or self.hidden_depth:
            return
        self.parts.append(data if self.pre_depth else _SPACES.sub(" ", data))


def visible_text(html: str) -> str:
    """The text a reader sees above the quoted original, one line per block."""
    parser = _VisibleText()
    parser.feed(html[:MAX_CHARS])
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).split("\n"))
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
