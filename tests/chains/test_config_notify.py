"""`notify:` in `.baton.yml`: what parses, and every error naming its line and field; the editors'
JSON Schema agrees on each case."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from chains.config import NotifyEntry, parse_config

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "baton-yml.schema.json").read_text()
)


def schema_errors(text: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [e.message for e in validator.iter_errors(yaml.safe_load(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notify: [release-chat]\n", (NotifyEntry("release-chat", line=1),)),
        (
            "notify:\n  - channel: release-chat\n    events: [chain_failed, release_finished]\n"
            "    branches: 'main release/*'\n",
            (
                NotifyEntry(
                    "release-chat",
                    events=("chain_failed", "release_finished"),
                    branches=("main", "release/*"),
                    line=2,
                ),
            ),
        ),
        (
            "notify:\n  - {channel: ops_mail, events: run_refused}\n  - team-chat\n",
            (
                NotifyEntry("ops_mail", events=("run_refused",), line=2),
                NotifyEntry("team-chat", line=3),
            ),
        ),
        ("notify: []\n", ()),
    ],
)
def test_notify_parses(text: str, expected: tuple[NotifyEntry, ...]) -> None:
    assert parse_config(text).notify == expected
    assert schema_errors(text) == []


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("notify: release-chat\n", 1, "notify", "must be a list of channels"),
        ("notify:\n  - events: [chain_failed]\n", 2, "notify[0].channel", "names no channel"),
        (
            "notify:\n  - channel: 'slack://T000/B000/XXXX'\n",
            2,
            "notify[0].channel",
            "never its address",
        ),
        (
            "notify:\n  - a\n  - channel: b\n    events: [chain_failed, chain_exploded]\n",
            4,
            "notify[1].events[1]",
            "must be one of chain_failed, chain_recovered",
        ),
        (
            "notify:\n  - channel: b\n    url: json://x/y\n",
            3,
            "notify[0].url",
            "unknown field; expected one of channel, events, branches",
        ),
        ("notify:\n  - channel: [a, b]\n", 2, "notify[0].channel", "single value"),
        ("notify:\n  - channel: ''\n", 2, "notify[0].channel", "must not be empty"),
        ("notify:\n  - channel: a\n    events: {x: 1}\n", 3, "notify[0].events", "must be a list"),
        ("notify:\n" + "  - a\n" * 21, 2, "notify", "at most 20 entries"),
    ],
)
def test_notify_errors_name_line_and_field(text: str, line: int, field: str, words: str) -> None:
    from chains.config import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert (info.value.line, info.value.field) == (line, field)
    assert words in str(info.value)
    assert str(info.value).startswith(f"line {line}: {field}:")
    assert schema_errors(text), "the JSON Schema must refuse it too"


def test_admin_rules_keep_the_files_notify() -> None:
    from chains.config import merge

    base = parse_config("notify: [release-chat]\ndownstream:\n  - project: acme/a\n")
    rule = parse_config("downstream:\n  - project: acme/b\n", standalone=False)
    assert merge(base, rule).notify == base.notify


def test_the_plan_carries_notify() -> None:
    from chains.planner import Change, plan

    change = Change(
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
    )
    config = parse_config("notify: [release-chat]\ndownstream:\n  - project: acme/a\n")
    the_plan = plan(change, config)
    assert the_plan.notify == config.notify
    assert the_plan.only(frozenset({"a"})).notify == config.notify
