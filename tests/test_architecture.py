"""Who may import whom: the rules in ARCHITECTURE.md's ``imports`` block hold for every
import of every module of the project, and no module reaches itself through imports.

Every import counts, wherever it is written: inside a function (a lazy import is still a
dependency, it only runs later), under ``if TYPE_CHECKING:``, inside ``try:``. The rules
are read from ARCHITECTURE.md itself, so the document and this test cannot drift.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
PASSED_THROUGH = "passed through"  # only inside workflow.unsafe.imports_passed_through()
INSIDE_FUNCTIONS = "inside functions"  # only in a function body, never while loading
QUALIFIERS = frozenset({PASSED_THROUGH, INSIDE_FUNCTIONS})
ANYTHING = "*"
NAME = r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*"
ITEM = re.compile(rf"(?P<package>\*|{NAME})(?:\s*\((?P<qualifier>[^()]*)\))?")
BLOCK = re.compile(r"^```imports[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


class RulesError(ValueError):
    """The ``imports`` block cannot be read."""


@dataclass(frozen=True)
class Allowed:
    """A package the importer may import (``*``: anything), and under which condition."""

    package: str
    qualifier: str | None = None


Rules = dict[str, list[Allowed]]


@dataclass(frozen=True)
class Import:
    """One import of a project module by another."""

    importer: str
    target: str
    where: str  # path:line
    in_function: bool
    passed_through: bool


def parse_rules(markdown: str) -> Rules:
    """The rules of the one fenced ``imports`` block: ``package -> allowed, allowed (why)``."""
    blocks = BLOCK.findall(markdown)
    if len(blocks) != 1:
        raise RulesError(f"expected one ```imports block, found {len(blocks)}")
    rules: Rules = {}
    for number, raw in enumerate(blocks[0].splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        importer, arrow, rest = (part.strip() for part in line.partition("->"))
        if not arrow or not re.fullmatch(NAME, importer):
            raise RulesError(f"line {number}: not `package -> allowed, ...`: {raw!r}")
        if importer in rules:
            raise RulesError(f"line {number}: a second rule for {importer}")
        allowed = []
        for item in rest.split(","):
            match = ITEM.fullmatch(item.strip())
            if match is None:
                raise RulesError(f"line {number}: not a package: {item.strip()!r}")
            qualifier = match["qualifier"]
            if qualifier is not None and qualifier.strip() not in QUALIFIERS:
                raise RulesError(f"line {number}: unknown condition ({qualifier})")
            allowed.append(Allowed(match["package"], qualifier and qualifier.strip()))
        rules[importer] = allowed
    if not rules:
        raise RulesError("the ```imports block holds no rule")
    return rules


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages (the top-level folders with an __init__.py)."""
    modules = {}
    for init in sorted(root.glob("*/__init__.py")):
        for path in sorted(init.parent.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if any(part.startswith(".") or part == "__pycache__" for part in parts):
                continue
            modules[".".join(parts).removesuffix(".__init__")] = path
    return modules


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The project module an import loads (``pkg.mod.name`` -> ``pkg.mod``), or None."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _passes_through(expression: ast.expr) -> bool:
    """Whether a ``with`` item is ``workflow.unsafe.imports_passed_through()``."""
    return isinstance(expression, ast.Call) and ast.unparse(expression.func).endswith(
        "imports_passed_through"
    )


def imports_of(name: str, path: Path, modules: dict[str, Path], root: Path) -> list[Import]:
    """The project modules ``name`` imports, each with where and how."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[Import, None] = {}  # in order, once each (``from m import a, b``: m once)

    def add(target: str, line: int, in_function: bool, passed_through: bool) -> None:
        resolved = _resolve(target, modules)
        if resolved is not None and resolved != name:
            where = f"{path.relative_to(root)}:{line}"
            found[Import(name, resolved, where, in_function, passed_through)] = None

    def visit(node: ast.AST, in_function: bool, passed_through: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True, passed_through)
            elif isinstance(child, ast.With | ast.AsyncWith) and any(
                _passes_through(item.context_expr) for item in child.items
            ):
                visit(child, in_function, True)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child.lineno, in_function, passed_through)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    up = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*up, base] if base else up)
                add(base, child.lineno, in_function, passed_through)
                for alias in child.names:
                    add(f"{base}.{alias.name}", child.lineno, in_function, passed_through)
            else:
                visit(child, in_function, passed_through)

    visit(ast.parse(path.read_text(), str(path)), False, False)
    return list(found)


def all_imports(root: Path) -> list[Import]:
    """Every import of a project module by a project module."""
    modules = project_modules(root)
    return [i for name, path in modules.items() for i in imports_of(name, path, modules, root)]


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """One cycle of each group of modules that reach one another (``[a, b, a]``)."""
    edges: dict[str, set[str]] = {}
    for i in imports:
        edges.setdefault(i.importer, set()).add(i.target)
        edges.setdefault(i.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(_shortest_cycle(group, edges) for group in groups)


def _shortest_cycle(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    start = min(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges[node] & group):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def _contains(package: str, module: str) -> bool:
    return package == ANYTHING or module == package or module.startswith(package + ".")


def rule_of(module: str, rules: Rules) -> str | None:
    """The importer rule that applies to ``module``: the longest package containing it."""
    owners = [importer for importer in rules if _contains(importer, module)]
    return max(owners, key=len, default=None)


def violations(imports: Iterable[Import], rules: Rules) -> list[str]:
    """One line per import the rules do not allow."""
    found = []
    for i in imports:
        owner = rule_of(i.importer, rules)
        if owner is None:
            found.append(f"{i.where}: {i.importer} has no rule in ARCHITECTURE.md")
            continue
        matching = [a for a in rules[owner] if _contains(a.package, i.target)]
        if not matching:
            found.append(f"{i.where}: {owner} may not import {i.target}")
            continue
        best = max(matching, key=lambda a: -1 if a.package == ANYTHING else len(a.package))
        if best.qualifier == PASSED_THROUGH and not i.passed_through:
            found.append(
                f"{i.where}: {owner} imports {i.target} only inside "
                "workflow.unsafe.imports_passed_through()"
            )
        if best.qualifier == INSIDE_FUNCTIONS and not i.in_function:
            found.append(f"{i.where}: {owner} imports {i.target} only inside a function")
    return found


# -- the project -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(ARCHITECTURE.read_text())


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports(ROOT)


def test_no_module_reaches_itself_through_imports(imports: list[Import]) -> None:
    assert len(imports) > 500  # the walk found the project
    assert [" -> ".join(cycle) for cycle in cycles(imports)] == []


def test_every_import_is_one_architecture_md_allows(imports: list[Import], rules: Rules) -> None:
    assert violations(imports, rules) == []


def test_every_package_has_a_rule_and_every_rule_names_a_package(rules: Rules) -> None:
    modules = project_modules(ROOT)
    packages = {name.split(".")[0] for name in modules}
    assert {"workflows", "activities", "db", "workers", "ingress", "devstack"} <= packages
    assert packages - set(rules) == set(), "a package without a rule in ARCHITECTURE.md"
    named = set(rules) | {a.package for allowed in rules.values() for a in allowed}
    assert sorted(p for p in named - {ANYTHING} if p not in modules) == []


# -- the checker itself, on small trees --------------------------------------------------

SMALL_RULES = """
```imports
workflows          -> workflows, workflows.models (passed through), activities (passed through)
activities         -> activities, db, workflows.models
db                 -> db
workers            -> workers, activities, db, workflows, devstack (inside functions)
devstack           -> devstack, workers
devstack.emulators -> devstack.emulators  # ours stand in for the vendors
```
"""


def _says(found: list[str], complaint: str | None) -> None:
    """Nothing found, or something found and all of it the complaint."""
    if complaint is None:
        assert found == []
    else:
        assert found and all(complaint in v for v in found), found


def _tree(root: Path, files: dict[str, str]) -> list[Import]:
    """Write the modules (and an __init__.py in every package), return their imports."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        for parent in path.relative_to(root).parents:
            if parent != Path(".") and not (root / parent / "__init__.py").exists():
                (root / parent / "__init__.py").write_text("")
    return all_imports(root)


def test_a_lazy_import_closes_a_cycle(tmp_path: Path) -> None:
    """Today's first circle, as it was: the activity imported the schedules lazily."""
    imports = _tree(
        tmp_path,
        {
            "activities/metric_sync.py": "def f():\n    from workers.schedules import r\n",
            "workers/schedules.py": "from workflows.metric_sync import MetricSync\n",
            "workflows/metric_sync.py": "from temporalio import workflow\n"
            "with workflow.unsafe.imports_passed_through():\n"
            "    from activities.metric_sync import ReconcileResult\n",
        },
    )
    assert cycles(imports) == [
        [
            "activities.metric_sync",
            "workers.schedules",
            "workflows.metric_sync",
            "activities.metric_sync",
        ]
    ]
    assert violations(imports, parse_rules(SMALL_RULES)) == [
        "activities/metric_sync.py:2: activities may not import workers.schedules"
    ]


def test_a_package_that_imports_its_modules_which_import_it_is_a_cycle(tmp_path: Path) -> None:
    """Today's second and third circles: ``from pkg import helpers`` in a module that the
    package's __init__ imports."""
    imports = _tree(
        tmp_path,
        {
            "workers/cli/__init__.py": "from workers.cli.jobs import add\n",
            "workers/cli/jobs.py": "def add():\n    from workers import cli\n",
        },
    )
    assert cycles(imports) == [["workers.cli", "workers.cli.jobs", "workers.cli"]]


def test_no_cycle_where_there_is_none(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "workers/cli/__init__.py": "from workers.cli import jobs\nfrom workers.cli import *\n",
            "workers/cli/jobs.py": "from workers.cli.common import emit\nimport os, json\n",
            "workers/cli/common.py": "import workers.cli.common\n",  # itself: no cycle
        },
    )
    assert cycles(imports) == []
    assert {(i.importer, i.target) for i in imports} == {
        ("workers.cli", "workers.cli.jobs"),
        ("workers.cli.jobs", "workers.cli.common"),
    }


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("from activities.email import E\n", "only inside workflow.unsafe"),
        ("from workflows.models.x import M\n", "only inside workflow.unsafe"),
        (
            "from temporalio import workflow\nwith workflow.unsafe.imports_passed_through():\n"
            "    from activities.email import E\n",
            None,
        ),
        (
            "with workflow.unsafe.imports_passed_through(), open('f'):\n"
            "    import activities.email\n",
            None,
        ),
        (
            "with workflow.unsafe.sandbox_unrestricted():\n    from activities.email import E\n",
            "only inside workflow.unsafe",
        ),
        ("def f():\n    from activities.email import E\n", "only inside workflow.unsafe"),
        ("from workflows.policies import DB_RETRY\n", None),  # its own package: anywhere
        ("from db.pool import Pool\n", "workflows may not import db.pool"),
        ("from workers.settings import Settings\n", "workflows may not import workers.settings"),
    ],
)
def test_what_a_workflow_may_import(tmp_path: Path, source: str, complaint: str | None) -> None:
    imports = _tree(
        tmp_path,
        {
            "workflows/job.py": source,
            "workflows/policies.py": "",
            "workflows/models/x.py": "",
            "activities/email.py": "",
            "db/pool.py": "",
            "workers/settings.py": "",
        },
    )
    _says(violations(imports, parse_rules(SMALL_RULES)), complaint)


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("def run():\n    from devstack.dev import main\n", True),
        ("async def run():\n    import devstack.outbox\n", True),
        ("class C:\n    def m(self):\n        from devstack.dev import main\n", True),
        ("from devstack.dev import main\n", False),
        ("import devstack\n", False),
        ("class C:\n    from devstack.dev import main\n", False),  # runs while loading
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from devstack.dev import X\n",
            False,
        ),
        ("try:\n    from devstack.dev import main\nexcept ImportError:\n    main = None\n", False),
    ],
)
def test_what_workers_may_import_of_the_dev_stack(
    tmp_path: Path, source: str, allowed: bool
) -> None:
    imports = _tree(
        tmp_path,
        {"workers/cli.py": source, "devstack/dev.py": "", "devstack/outbox.py": ""},
    )
    found = violations(imports, parse_rules(SMALL_RULES))
    if allowed:
        assert found == []
    else:
        assert found and all(v.endswith("only inside a function") for v in found), found


@pytest.mark.parametrize(
    ("path", "source", "complaint"),
    [
        # the longest importer rule applies: the emulators are not the dev stack
        (
            "devstack/emulators/resend.py",
            "from workers.settings import S\n",
            "devstack.emulators may not import workers.settings",
        ),
        ("devstack/dev.py", "from workers.settings import S\n", None),
        # for a type only is still an import
        (
            "activities/connectors.py",
            "import typing\nif typing.TYPE_CHECKING:\n    from workers.settings import S\n",
            "activities may not import workers.settings",
        ),
        # relative imports resolve to the module they name
        ("db/queries.py", "from ..activities import email\n", "db may not import activities"),
        ("db/queries.py", "from . import pool\n", None),
        # libraries are not ours to restrict
        ("db/queries.py", "import os\nimport psycopg\nfrom temporalio import workflow\n", None),
        # a module whose package has no rule
        ("ingress/app.py", "from db.pool import Pool\n", "ingress.app has no rule"),
    ],
)
def test_rules_apply_to_the_right_modules(
    tmp_path: Path, path: str, source: str, complaint: str | None
) -> None:
    imports = _tree(
        tmp_path,
        {
            path: source,
            "workers/settings.py": "",
            "activities/email.py": "",
            "db/pool.py": "",
            "devstack/emulators/__init__.py": "",
        },
    )
    _says(violations(imports, parse_rules(SMALL_RULES)), complaint)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("no block at all", "expected one ```imports block, found 0"),
        (SMALL_RULES + SMALL_RULES, "expected one ```imports block, found 2"),
        ("```imports\n```\n", "holds no rule"),
        ("```imports\n# only a comment\n```\n", "holds no rule"),
        ("```imports\nworkers activities\n```\n", "not `package -> allowed, ...`"),
        ("```imports\nWorkers -> db\n```\n", "not `package -> allowed, ...`"),
        ("```imports\nworkers/cli -> db\n```\n", "not `package -> allowed, ...`"),
        ("```imports\nworkers -> \n```\n", "not a package: ''"),
        ("```imports\nworkers -> db,, activities\n```\n", "not a package: ''"),
        ("```imports\nworkers -> db..pool\n```\n", "not a package: 'db..pool'"),
        ("```imports\nworkers -> devstack (lazily)\n```\n", "unknown condition (lazily)"),
        ("```imports\nworkers -> db\nworkers -> activities\n```\n", "a second rule for workers"),
    ],
)
def test_a_rules_block_that_cannot_be_read_says_why(block: str, message: str) -> None:
    with pytest.raises(RulesError, match=re.escape(message)):
        parse_rules(block)


def test_rules_are_read_as_written() -> None:
    rules = parse_rules(SMALL_RULES)
    assert rules["workflows"] == [
        Allowed("workflows"),
        Allowed("workflows.models", PASSED_THROUGH),
        Allowed("activities", PASSED_THROUGH),
    ]
    assert rules["devstack.emulators"] == [Allowed("devstack.emulators")]
    assert rule_of("devstack.emulators.resend", rules) == "devstack.emulators"
    assert rule_of("devstack.dev", rules) == "devstack"
    assert rule_of("devstackish.dev", rules) is None  # a package, not a prefix of a name
    assert parse_rules("```imports\ntests -> *\n```\n") == {"tests": [Allowed(ANYTHING)]}
