"""Private SDK internals are reached only through one door: ``workers/sdk_internals/``.

Outside it, no project module imports a private module or name of a library, reads or
writes an underscore attribute that no project code defines, or overrides an underscore
member of a library class. The door itself imports no private module at its top level,
so it loads on any temporalio version and can fall back.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workflows", "activities", "db", "workers", "ingress", "devstack", "benchmarks")
PROJECT = (*PACKAGES, "tests")
DOOR = ROOT / "workers" / "sdk_internals"
# Underscore names of the standard library that are its public API.
STDLIB_PUBLIC = {"_exit", "_asdict", "_replace", "_fields", "_make", "_getframe"}


def _sources(*, door: bool = False) -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if (DOOR in path.parents) == door:
                yield path


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT


def _private_imports(tree: ast.AST, *, top_level_only: bool = False) -> list[str]:
    nodes = ast.iter_child_nodes(tree) if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if not _is_project(a.name) and any(map(_private, a.name.split(".")))
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _is_project(node.module):
                continue
            if any(map(_private, node.module.split("."))):
                found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if _private(a.name)]
    return found


def _defined_names() -> set[str]:
    """Every name project code defines: functions, classes, assignments, attributes set."""
    names: set[str] = set()
    for path in [*_sources(), *_sources(door=True), *sorted((ROOT / "tests").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_outside_the_door_imports_a_private_library_name() -> None:
    found = {
        str(path.relative_to(ROOT)): names
        for path in _sources()
        if (names := _private_imports(ast.parse(path.read_text())))
    }
    assert found == {}


def test_no_module_outside_the_door_touches_an_underscore_attribute_it_does_not_define() -> None:
    defined = _defined_names() | STDLIB_PUBLIC
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in defined:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert found == []


def _body_names(cls: ast.ClassDef) -> set[str]:
    names = set()
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_no_class_outside_the_door_overrides_an_underscore_member_of_a_library_class() -> None:
    found = []
    for path in _sources():
        if path.name == "__main__.py":  # runs the program when imported
            continue
        module = importlib.import_module(_module_name(path))
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            cls = getattr(module, node.name)
            library = [b for b in cls.__mro__[1:] if not _is_project(b.__module__)]
            for name in filter(_private, _body_names(node)):
                if any(hasattr(base, name) for base in library):
                    found.append(f"{module.__name__}.{node.name}.{name}")
    assert found == []


def test_the_door_loads_without_any_private_module() -> None:
    # Its private imports happen only once the version gate lets them.
    tree = ast.parse((DOOR / "__init__.py").read_text())
    assert _private_imports(tree, top_level_only=True) == []


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("from temporalio.worker._command_aware_visitor import CommandInfo", True),
        ("from temporalio.worker.workflow_sandbox import _runner", True),
        ("import temporalio.worker._workflow", True),
        ("from higgsfield_client.http.retry import NoRetry", False),
        ("from temporalio.worker import Worker", False),
        ("from __future__ import annotations", False),
        ("from workers.sdk_internals.compiled_sandbox import _compiled", False),  # ours
        ("from . import _local", False),  # relative: ours
    ],
)
def test_what_counts_as_a_private_import(source: str, private: bool) -> None:
    assert bool(_private_imports(ast.parse(source))) is private


def test_the_scan_sees_every_package() -> None:
    scanned = {p.relative_to(ROOT).parts[0] for p in _sources()}
    assert scanned == set(PACKAGES)
    assert {p.name for p in _sources(door=True)} == {"__init__.py", "compiled_sandbox.py"}
