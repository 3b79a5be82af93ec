"""Check that the lock files still cover pyproject.toml: every dependency pinned, at a version its
specifier allows. Run by the Makefile's install step (and tests/deploy/test_lock.py); when it
fails, `make lock` regenerates the locks.

Usage: python requirements/check_lock.py   (exit 0: covered; 1: one line per problem)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def read_pins(lock: Path) -> dict[str, Version]:
    """``name==version`` lines of a pip-compile lock, by canonical name."""
    pins: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def problems(root: Path = ROOT) -> list[str]:
    """What the locks miss of pyproject.toml, one sentence each (empty: they cover it)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project.get("dependencies", [])]
    dev = [Requirement(r) for r in project.get("optional-dependencies", {}).get("dev", [])]
    found: list[str] = []
    for lock, requirements in (
        (root / "requirements" / "runtime.txt", runtime),
        (root / "requirements" / "dev.txt", runtime + dev),
    ):
        if not lock.exists():
            found.append(f"{lock.relative_to(root)} is missing")
            continue
        pins = read_pins(lock)
        for requirement in requirements:
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            pinned = pins.get(canonicalize_name(requirement.name))
            if pinned is None:
                found.append(f"{lock.relative_to(root)} has no pin for {requirement.name}")
            elif not requirement.specifier.contains(pinned, prereleases=True):
                found.append(
                    f"{lock.relative_to(root)} pins {requirement.name}=={pinned}, "
                    f"but pyproject.toml asks for {requirement}"
                )
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"lock out of date: {problem}", file=sys.stderr)
    if found:
        print(
            "run `make lock` to regenerate requirements/*.txt from pyproject.toml", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
