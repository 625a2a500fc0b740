"""The dependency locks the image installs from agree with pyproject.toml (no podman, no network).

``scripts/lock-deps.sh`` writes ``requirements/runtime.lock`` ([project] dependencies) and
``requirements/build.lock`` ([build-system] requires); the Dockerfile installs them with
``pip install --require-hashes --no-deps``. A dependency added or a bound changed in pyproject.toml
without re-running the script fails here, naming the package, rather than in the image build.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
#: ``name==version [; marker]`` at the start of a line, then ``--hash=sha256:...`` continuation lines.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;\s*(.+?))?\s*\\?$")
_HASH = re.compile(r"^\s+--hash=sha256:[0-9a-f]{64}(?:\s*\\)?$")
#: The interpreters a lock must serve: the floor in pyproject, python:3.12-slim, Debian trixie's.
PYTHONS = ("3.11", "3.12", "3.13")


def read_lock(path: Path) -> dict[str, tuple[Version, Marker | None, int]]:
    """``name → (version, marker, number of hashes)`` of a lock file; fails on a line it cannot read."""
    pins: dict[str, tuple[Version, Marker | None, int]] = {}
    current: str | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if m := _PIN.match(line):
            current = canonicalize_name(m.group(1))
            assert current not in pins, f"{path.name}:{number}: {current} pinned twice"
            pins[current] = (Version(m.group(2)), Marker(m.group(3)) if m.group(3) else None, 0)
        elif _HASH.match(line) and current is not None:
            version, marker, hashes = pins[current]
            pins[current] = (version, marker, hashes + 1)
        else:
            pytest.fail(f"{path.name}:{number}: unexpected line {line!r}")
    return pins


def pyproject() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def check_lock(requirements: list[str], lock: Path) -> None:
    pins = read_lock(lock)
    assert pins, f"{lock.name} pins nothing"
    unhashed = [name for name, (_, _, hashes) in pins.items() if hashes == 0]
    assert not unhashed, f"{lock.name}: pins without hashes: {unhashed}"
    for python in PYTHONS:
        env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
               "platform_system": "Linux", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "platform_machine": "x86_64"}  # fmt: skip
        for text in requirements:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            assert name in pins, f"{req.name} ({text}) is not in {lock.name}: run scripts/lock-deps.sh"
            version, marker, _ = pins[name]
            assert marker is None or marker.evaluate(env), f"{name} in {lock.name} not for Python {python}"
            assert req.specifier.contains(version, prereleases=True), (
                f"{lock.name} pins {name}=={version}, outside {text!r}: run scripts/lock-deps.sh"
            )


def test_runtime_lock_covers_the_project_dependencies() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    check_lock(project["dependencies"], LOCKS / "runtime.lock")


def test_build_lock_covers_the_build_requirements() -> None:
    build = pyproject()["build-system"]
    assert isinstance(build, dict)
    check_lock(build["requires"], LOCKS / "build.lock")


def test_extras_of_dependencies_are_locked_too() -> None:
    """``nats-py[nkeys]`` needs nkeys (and what it needs): the lock holds the extra's packages."""
    pins = read_lock(LOCKS / "runtime.lock")
    assert {"nkeys", "pynacl"} <= set(pins)


def test_the_dockerfile_installs_the_locks_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for lock in ("build.lock", "runtime.lock"):
        assert re.search(rf"--require-hashes --no-deps\s*(\\\s*)?-r /src/requirements/{lock}", dockerfile), (
            lock
        )
