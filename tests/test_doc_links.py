"""Every relative link in the documents points at a file that exists, and at a heading
that exists when it names one; every repository path the living documents name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_named_paths import exists, named_paths

ROOT = Path(__file__).resolve().parent.parent
# The documents a newcomer reads. The benchmarks' history is a dated log: its links must
# work, but the paths it names are those of the day.
LIVING = ("README.md", "ARCHITECTURE.md", "RELIABILITY.md", "docs/*.md")
LOGS = ("benchmarks/HISTORY.md",)
# Paths the documents name that exist only at run time, not in the repository.
RUNTIME = (".orchestrator/",)

FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"  # [text], one level of brackets inside
    r"\(\s*(?:<([^>]*)>|([^)\s]+))"  # (target) or (<target with spaces>)
    r"(?:\s+\"[^\"]*\")?\s*\)"  # an optional "title"
)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents(patterns: tuple[str, ...]) -> list[Path]:
    """The documents the patterns name, each at least once."""
    found = [path for pattern in patterns for path in sorted(ROOT.glob(pattern))]
    assert found, patterns
    return found


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(CODE_SPAN.sub("", line))
    return lines


def links(text: str) -> list[str]:
    """The targets of the Markdown links and images in ``text``, outside code."""
    return [m.group(1) or m.group(2) for line in prose(text) for m in LINK.finditer(line)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, then lower case, punctuation dropped
    (word characters, spaces and hyphens stay), spaces turned into hyphens."""
    text = LINK.sub(
        lambda m: m.group(0)[m.group(0).index("[") + 1 : m.group(0).index("]")], heading
    )
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a document, numbered as GitHub numbers repeated ones."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(document: Path) -> list[str]:
    """The relative links of ``document`` whose file or heading does not exist."""
    broken = []
    for target in links(document.read_text()):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # a URL: not ours to check here
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken


@pytest.mark.parametrize(
    "document",
    documents(LIVING + LOGS),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_relative_link_resolves(document: Path) -> None:
    assert broken_links(document) == []


@pytest.mark.parametrize("document", documents(LIVING), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_document_names_exists(document: Path) -> None:
    named = [p for p in named_paths(document.read_text()) if not p.startswith(RUNTIME)]
    assert [p for p in named if not exists(p)] == []


def test_the_docs_pages_are_all_linked_from_the_readme() -> None:
    readme = set(links((ROOT / "README.md").read_text()))
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages - readme == set()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see [the docs](docs/deployment.md)", ["docs/deployment.md"]),
        ("[a](a.md#b) and [c](c.md)", ["a.md#b", "c.md"]),
        ("[anchor only](#known-limits)", ["#known-limits"]),
        ('[titled](x.md "a title")', ["x.md"]),
        ("[spaces](<my file.md>)", ["my file.md"]),
        ("![a picture](img/p.png)", ["img/p.png"]),
        ("[`code` in text](y.md)", ["y.md"]),
        ("[with [brackets] inside](z.md)", ["z.md"]),
        ("`[not a link](inline.md)`", []),
        ("```\n[not a link](fenced.md)\n```", []),
        ("~~~md\n[not a link](tilde.md)\n~~~\n[after](after.md)", ["after.md"]),
        ("[text] (space.md) is no link", []),
        ("[empty]()", []),
        ("a [bare] bracket and (parens.md)", []),
    ],
)
def test_what_counts_as_a_link(text: str, found: list[str]) -> None:
    assert links(text) == found


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Walkthrough: the keyless demo", "walkthrough-the-keyless-demo"),
        (
            "Reading encrypted payloads: the codec endpoint",
            "reading-encrypted-payloads-the-codec-endpoint",
        ),
        ("Pick-up of the app's rows", "pick-up-of-the-apps-rows"),
        ("Memory (2026-11-25 to 2026-12-03)", "memory-2026-11-25-to-2026-12-03"),
        ("The `imports` block", "the-imports-block"),
        ("A [linked](x.md) heading", "a-linked-heading"),
        ("docker compose", "docker-compose"),
        ("Déjà vu", "déjà-vu"),
    ],
)
def test_heading_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_and_fenced_comments() -> None:
    text = "# Top\n## Setup\n```bash\n# not a heading\n```\n## Setup\n#NoSpace\n"
    assert anchors(text) == {"top", "setup", "setup-1"}


def test_a_broken_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# Title\n## A section\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](there.md) [ok](there.md#a-section) [ok](#mine) [url](https://example.com/x.md)\n"
        "[gone](missing.md) [no heading](there.md#b-section) [not mine](#yours)\n"
        "## Mine\n"
    )
    assert broken_links(doc) == [
        "missing.md: no such file",
        "there.md#b-section: no heading #b-section in there.md",
        "#yours: no heading #yours in doc.md",
    ]
