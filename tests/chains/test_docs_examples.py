"""Every example in docs/baton-yml.md parses, validates against the editors' JSON Schema, and
plans exactly the runs its `expect` line names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from chains.conditions import Context
from chains.config import parse_config
from chains.planner import Change, change_context, plan

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "baton-yml.md").read_text()
SCHEMA = json.loads((ROOT / "schemas" / "baton-yml.schema.json").read_text())
EXAMPLES = re.findall(r"```yaml\n(.*?)```\n<!-- expect: ([^>]*?) ?-->", DOC, re.S)


class Yaml12Loader(yaml.SafeLoader):
    """Booleans as YAML 1.2 (and editors) read them: `on:` is a key, not true."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(text: str) -> object:
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


CHANGE = Change(
    forge="gitlab",
    project="acme/app",
    project_url="http://forge/acme/app",
    number=7,
    url="http://forge/acme/app/-/merge_requests/7",
    source_branch="feature/x",
    target_branch="main",
    head_sha="a" * 40,
    upstream_ref="refs/merge-requests/7/head",
    title="Add x",
    author="alice",
    labels=("backend",),
)


def test_the_doc_has_an_example_for_every_feature() -> None:
    assert len(EXAMPLES) >= 20
    features = (
        "depends_on",
        "soft_fail",
        "strategy: mirror",
        "strategy: async",
        "branches",
        "on: [upstream]",
        "if:",
        "params_file",
        "inherit",
        "mode:",
        "wait:",
        "deploy:",
        "cancel: detach",
        "project: self",
        "github:",
        "skip:",
        "masked: true",
    )
    for feature in features:
        assert any(feature in text for text, _ in EXAMPLES), feature


@pytest.mark.parametrize(
    ("text", "expect"), EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))]
)
def test_example(text: str, expect: str) -> None:
    jsonschema.validate(load(text), SCHEMA)
    config = parse_config(text)
    context = Context(
        **{**change_context(CHANGE).__dict__, "changed_files": lambda: ["src/app.py"]}
    )
    params = {"ci/downstream.env": {"IMAGE_TAG": "v1"}}
    result = plan(CHANGE, config, context=context, params=params)
    assert ",".join(run.key for run in result.runs) == expect.strip()
    assert all(not run.error for run in result.runs)


@pytest.mark.parametrize(
    "text",
    [
        "downstream: [{project: acme}]",
        "downstream: [{project: acme/a, strategy: sometimes}]",
        "downstream: [{project: acme/a, colour: red}]",
        "downstream: [{project: acme/a, timeout: 30}]",
        "stages: [a]",
        "variables: {1BAD: x}",
    ],
)
def test_the_schema_refuses_what_the_validator_refuses(text: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(load(text), SCHEMA)
