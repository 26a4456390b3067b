"""Every file a CLI help text or a docstring names exists in the tree."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workflows", "activities", "db", "workers", "ingress", "devstack", "benchmarks")
EXTENSIONS = "json|py|md|toml|ya?ml|sql|txt|html|css|js|sh|cfg|ini|csv"
# A relative path with at least one folder (not part of a URL or of a longer path), or a
# top-level document such as README.md.
NAMED = re.compile(
    rf"(?<![\w/.:@~$-])((?:[\w.-]+/)+[\w.*<>-]+\.(?:{EXTENSIONS})|[A-Z][A-Z_-]+\.md)\b"
)
PLACEHOLDER = re.compile(r"<[^>]*>|NNNN")


def named_paths(text: str, runtime: frozenset[str] = frozenset()) -> list[str]:
    """The repository paths ``text`` names; ``runtime``: names of variables a path may start
    with (``home/secrets.json`` in a function taking ``home`` is not a repository path)."""
    found = []
    for path in NAMED.findall(text):
        first = path.split("/")[0]
        if first in runtime or ("/" in path and "." in first[1:]):  # a variable; a host
            continue
        found.append(path)
    return found


def exists(path: str) -> bool:
    """The path, or for a pattern (``db/migrations/NNNN_*.sql``) at least one match."""
    if "*" in path or PLACEHOLDER.search(path):
        return any(ROOT.glob(PLACEHOLDER.sub("*", path)))
    return (ROOT / path).exists()


def _help_texts() -> Iterator[tuple[str, str]]:
    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
        yield " ".join(("orchestrator", *path, "--help")), parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, (*path, name))

    yield from walk(_parser(), ())


def _docstrings() -> Iterator[tuple[str, str, frozenset[str]]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(
                    node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                ):
                    continue
                doc = ast.get_docstring(node)
                if not doc:
                    continue
                runtime = (
                    frozenset(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    else frozenset()
                )
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}"
                yield where, doc, runtime


def test_every_file_a_help_text_names_exists() -> None:
    texts = list(_help_texts())
    assert len(texts) > 25
    missing = [(where, p) for where, text in texts for p in named_paths(text) if not exists(p)]
    assert missing == []
    named = {p for _, text in texts for p in named_paths(text)}
    assert "devstack/demo-job.json" in named  # `jobs start --help` points at an example


def test_every_file_a_docstring_names_exists() -> None:
    docs = list(_docstrings())
    assert len(docs) > 500
    missing = [
        (where, p)
        for where, doc, runtime in docs
        for p in named_paths(doc, runtime)
        if not exists(p)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("job JSON (see examples/job.json)", ["examples/job.json"]),
        ("``devstack/demo-job.json``", ["devstack/demo-job.json"]),
        ("see README.md and ARCHITECTURE.md", ["README.md", "ARCHITECTURE.md"]),
        ("named queries in `db/queries/*.sql`", ["db/queries/*.sql"]),
        ("from https://example.com/docs/api.json", []),
        ("the host api.example.com/v1/spec.yaml", []),
        ("a path /etc/app/config.toml", []),
        ("~/.config/app.json and $HOME/x/y.json", []),
        ("temporalio/features#573", []),
        ("version 1.35.0 of setup.py", []),  # no folder: too ambiguous to check
    ],
)
def test_what_counts_as_a_named_file(text: str, named: list[str]) -> None:
    assert named_paths(text) == named


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("devstack/demo-job.json", True),
        ("examples/job.json", False),
        ("examples/demo-job.json", False),
        ("db/migrations/NNNN_*.sql", True),
        ("db/queries/<group>.sql", True),
        ("db/queries/*.nothing.sql", False),
        ("README.md", True),
        ("NOTES.md", False),
    ],
)
def test_what_counts_as_existing(path: str, found: bool) -> None:
    assert exists(path) is found


def test_a_path_under_a_parameter_of_the_function_is_not_a_repository_path() -> None:
    assert named_paths("Read ``home/secrets.json``.", frozenset({"home"})) == []
    assert named_paths("Read ``home/secrets.json``.") == ["home/secrets.json"]
