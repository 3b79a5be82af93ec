"""The docs name only code that exists: every repository path (`bots/engine/planning.py`,
`deploy/helm/baton/`) and every dotted name of ours (`bots.engine.triggering.trigger`,
`chains.runstate`) written in backticks in README.md and docs/*.md is there."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = (
    "bots",
    "chains",
    "notify",
    "dashboard",
    "console",
    "config",
    "sandbox",
    "demo",
    "deploy",
    "docs",
    "tests",
    "bench",
    "templates",
    "static",
    "schemas",
    "requirements",
    ".github",
    ".ci",
)
# `path`, `path/`, `path: NAME` (a name defined in that file), with an optional trailing `::test`.
_TOPS = "|".join(re.escape(t) for t in TOP)
PATH = re.compile(rf"^((?:{_TOPS})(?:/[\w.\-]+)*/?)(?:(?::|: )(\w+))?(?:::[\w\[\]-]+)*$")
DOTTED = re.compile(
    r"^((?:bots|chains|notify|dashboard|console|config|sandbox|demo)(?:\.\w+)+)(?:\(\))?$"
)
FILE_NAME = re.compile(r"\.(py|md|html|json|ya?ml|toml|sh|txt|cfg)$")  # `config.py`: a file name
PLACEHOLDER = re.compile(r"[<>*{}]|\.\.\.|…")


def _named() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), start=1):
            for token in re.findall(r"`([^`\n]+)`", line):
                found.append((doc.relative_to(ROOT).as_posix(), number, token.strip()))
    return found


def _path_missing(path: str, name: str | None) -> str | None:
    target = ROOT / path
    if not target.exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        return None if ignored.returncode == 0 else f"no such path {path}"  # made by the reader
    if name and target.is_file() and not re.search(rf"\b{re.escape(name)}\b", target.read_text()):
        return f"{path} defines no {name}"
    return None


def _dotted_missing(dotted: str) -> str | None:
    parts = dotted.split(".")
    if len(parts) == 2 and _is_permission(*parts):
        return None  # `chains.manage_forge`: a permission, app label and codename
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            thing: object = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(thing, attribute):
                return f"{module_name} has no {'.'.join(parts[cut:])}"
            thing = getattr(thing, attribute)
        return None
    return f"no module {dotted}"


def _is_permission(app_label: str, codename: str) -> bool:
    from django.apps import apps

    if app_label not in {a.label for a in apps.get_app_configs()}:
        return False
    models = apps.get_app_config(app_label).get_models()
    return any(codename == name for model in models for name, _ in model._meta.permissions)


@pytest.mark.django_db
def test_every_code_path_the_docs_name_exists() -> None:
    missing = []
    for doc, number, token in _named():
        if PLACEHOLDER.search(token):
            continue  # a pattern (`tests/fixtures/webhooks/<forge>/…`), not one path
        if match := PATH.match(token):
            problem = _path_missing(match.group(1), match.group(2))
        elif (match := DOTTED.match(token)) and not FILE_NAME.search(token):
            problem = _dotted_missing(match.group(1))
        else:
            continue
        if problem:
            missing.append(f"{doc}:{number}: `{token}`: {problem}")
    assert missing == []


def test_the_check_sees_a_missing_path() -> None:
    assert _path_missing("bots/engine.py", None) == "no such path bots/engine.py"
    assert _path_missing("bots/forges/gitlab.py", "NO_SUCH_TABLE") is not None
    assert _dotted_missing("bots.engine.trigger") is not None
    assert _dotted_missing("chains.runstate") is None
    assert _dotted_missing("chains.manage_forge") is None  # a permission
    assert _dotted_missing("chains.no_such_permission") is not None
