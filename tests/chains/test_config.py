"""`.baton.yml` validation: good files parse; bad ones name the line and the field."""

from __future__ import annotations

import pytest

from chains.config import ConfigError, Variable, parse_config

GOOD = """\
variables:
  RELEASE_STREAM: stable
  API_TOKEN: {value: "s3cr3t", masked: true}
downstream:
  - key: docs-preview
    label: "Docs preview"
    project: acme/docs
    ref: main
    strategy: depend
    interruptible: false
    variables: {ENVIRONMENT: staging}
  - project: github:acme/site
    strategy: async
  - project: self
  - project: acme/legacy
    skip: "retired in 2026"
"""


def test_a_good_file() -> None:
    config = parse_config(GOOD)
    assert config.variables == (
        Variable("RELEASE_STREAM", "stable"),
        Variable("API_TOKEN", "s3cr3t", masked=True),
    )
    docs, site, child, legacy = config.downstream
    assert (docs.key, docs.label, docs.project, docs.ref) == (
        "docs-preview",
        "Docs preview",
        "acme/docs",
        "main",
    )
    assert docs.interruptible is False
    assert docs.variables == (Variable("ENVIRONMENT", "staging"),)
    assert (site.key, site.project, site.strategy) == ("site", "github:acme/site", "async")
    assert (child.key, child.project) == ("child", "self")
    assert legacy.skip == "retired in 2026"


def test_empty_file_triggers_nothing() -> None:
    assert parse_config("").downstream == ()


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("downstream: [", 1, None, "not valid YAML"),
        (
            "downstream:\n  - project: acme/a\n    strategy: sometimes\n",
            3,
            "downstream[0].strategy",
            "must be one of depend, mirror, async",
        ),
        ("downstream:\n  - label: x\n", 2, "downstream[0].project", "needs a project"),
        ("downstream:\n  - project: acme\n", 2, "downstream[0].project", "full path"),
        (
            "downstream:\n  - project: acme/a\n    colour: red\n",
            3,
            "downstream[0].colour",
            "unknown field",
        ),
        ("downstream:\n  - project: acme/a\n  - project: other/a\n", 3, "key", "duplicate key"),
        ("variables:\n  1BAD: x\n", 2, "variables.1BAD", "variable names"),
        ("downstream: acme/a\n", 1, "downstream", "must be a list"),
        ("- a\n- b\n", 1, "the file", "must be a mapping"),
        (
            "downstream:\n  - project: acme/a\n    depends_on: [b]\n",
            3,
            "downstream[0].depends_on",
            "no target has the key 'b'",
        ),
        (
            "downstream:\n  - project: acme/a\n    mode: rerun-oldest\n",
            3,
            "downstream[0].mode",
            "must be one of new, rerun-latest, rerun-last-successful",
        ),
        (
            "downstream:\n  - project: acme/a\n    timeout: 30\n",
            3,
            "downstream[0].timeout",
            "only with wait: true",
        ),
        (
            "downstream:\n  - project: acme/a\n    wait: true\n    timeout: soon\n",
            4,
            "downstream[0].timeout",
            "whole number of seconds",
        ),
        (
            "downstream:\n  - {project: acme/a, wait: true, mode: rerun-last-successful}\n",
            2,
            "downstream[0].wait",
            "cannot be combined",
        ),
        (
            "downstream:\n  - {project: acme/a, deploy: prod, mode: rerun-latest}\n",
            2,
            "downstream[0].deploy",
            "cannot be combined",
        ),
        (
            "downstream:\n  - {key: a, project: x/a, depends_on: c}\n"
            "  - {key: b, project: x/b, depends_on: a}\n"
            "  - {key: c, project: x/c, depends_on: [b]}\n",
            2,
            "downstream[0].depends_on",
            "cycle: a → c → b → a",
        ),
        (
            "downstream:\n  - project: acme/a\n    if: 'branch = \"x\"'\n",
            3,
            "downstream[0].if",
            "cannot read",
        ),
        (
            "downstream:\n  - project: acme/a\n    on: [pull]\n",
            3,
            "downstream[0].on",
            "'pull' is not one of",
        ),
        (
            "downstream:\n  - project: acme/a\n    cancel: never\n",
            3,
            "downstream[0].cancel",
            "propagate, detach",
        ),
        (
            "downstream:\n  - project: acme/a\n    inherit: {secrets: true}\n",
            3,
            "downstream[0].inherit.secrets",
            "inherit takes variables",
        ),
        (
            "downstream:\n  - project: acme/a\n    interruptible: maybe\n",
            3,
            "downstream[0].interruptible",
            "true or false",
        ),
        ("variables:\n  X: {masked: true}\n", 2, "variables.X", "needs a value"),
        ("downstream:\n  - project: [a, b]\n", 2, "downstream[0].project", "single value"),
        ("stages: [a]\n", 1, "stages", "unknown field"),
    ],
)
def test_errors_name_line_and_field(text: str, line: int, field: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    error = info.value
    assert error.line == line
    assert error.field == field
    assert words in str(error)
    assert str(error).startswith(f"line {line}:")


@pytest.mark.parametrize(
    "text",
    [
        "\x00",
        "a: !!python/object:os.system ls",
        "&a [*a]",
        "{",
        "? [a]\n: b",
        "a: b: c",
        "downstream:\n  - !!binary aGVsbG8=",
        "'" * 3,
        "\t- x",
    ],
)
def test_hostile_or_broken_input_gives_a_config_error(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as error:
        assert str(error)
