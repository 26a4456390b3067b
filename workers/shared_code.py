"""Compiled code of the workflow modules, loaded once and shared by every sandboxed run.

Temporal's sandbox imports each workflow module afresh for every workflow run it keeps in
its cache, so module state is never shared between runs. The module body still runs once
per run (new classes, new functions); only the code objects it runs, which are immutable,
need not be unmarshalled again from the ``.pyc`` each time (README, Performance: "What
the SDK patches buy"). The worker installs it only with the SDK patches on
(:mod:`workers.sdk_internals`).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType

PACKAGE = "workflows"


class _SharedCodeLoader(importlib.machinery.SourceFileLoader):
    """A source loader whose code objects are compiled once per file version."""

    _codes: dict[tuple[str, int], CodeType] = {}

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        key = (path, os.stat(path).st_mtime_ns)  # an edited file is compiled again
        code = self._codes.get(key)
        if code is None:
            code = super().get_code(fullname)
            assert code is not None  # a source file always has code
            self._codes[key] = code
        return code


class _SharedCodeFinder:
    """Finds modules of ``PACKAGE`` as the path finder would, with the sharing loader."""

    @classmethod
    def find_spec(
        cls,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PACKAGE + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        spec.loader = _SharedCodeLoader(spec.loader.name, spec.loader.path)
        return spec


def install() -> None:
    """Share the workflow modules' code from now on (idempotent)."""
    if _SharedCodeFinder not in sys.meta_path:
        sys.meta_path.insert(0, _SharedCodeFinder)


def uninstall() -> None:
    """Load workflow modules as Python does again, and forget the shared code."""
    while _SharedCodeFinder in sys.meta_path:
        sys.meta_path.remove(_SharedCodeFinder)
    _SharedCodeLoader._codes.clear()


def installed() -> bool:
    """Whether workflow modules share their code now."""
    return _SharedCodeFinder in sys.meta_path
