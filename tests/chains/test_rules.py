"""Admin-defined rules: same schema, validated on save, merged after the file."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from bots.engine.planning import with_rules
from chains.config import ConfigError, merge, parse_config
from chains.models import Rule

FILE = """\
variables: {STREAM: file, KEEP: file}
downstream:
  - {key: api, project: acme/api, ref: main}
  - {key: web, project: acme/web}
"""
RULE = """\
variables: {STREAM: rule}
downstream:
  - {key: api, project: acme/api, ref: release}
  - {key: audit, project: acme/audit, depends_on: web}
"""


def test_rules_win_on_equal_names_and_add_the_rest() -> None:
    merged = merge(parse_config(FILE), parse_config(RULE, standalone=False))
    # A rule's variables reach only the rule's own targets (see tests/security/test_secrets.py).
    assert {v.name: v.value for v in merged.variables} == {"STREAM": "file", "KEEP": "file"}
    rule_vars = {t.key: {v.name: v.value for v in t.rule_variables} for t in merged.downstream}
    assert rule_vars == {"api": {"STREAM": "rule"}, "web": {}, "audit": {"STREAM": "rule"}}
    assert [(t.key, t.ref) for t in merged.downstream] == [
        ("api", "release"),
        ("web", None),
        ("audit", None),
    ]


def test_a_rule_depending_on_a_missing_key_is_refused_when_merged() -> None:
    with pytest.raises(ConfigError, match="no target has the key 'web'"):
        merge(parse_config("downstream: []"), parse_config(RULE, standalone=False))


@pytest.mark.django_db
def test_rules_are_validated_on_save_and_picked_by_project() -> None:
    bad = Rule(name="bad", projects="acme/*", config="downstream: [{project: acme}]")
    with pytest.raises(ValidationError) as info:
        bad.full_clean()
    assert "line 1: downstream[0].project" in str(info.value)
    Rule.objects.create(name="all acme", projects="acme/*", config=RULE, position=2)
    Rule.objects.create(name="other", projects="other/*", config="downstream: [{project: o/x}]")
    Rule.objects.create(
        name="off", projects="*", config="downstream: [{project: o/y}]", enabled=False
    )
    merged = with_rules(parse_config(FILE), "acme/app")
    assert [t.key for t in merged.downstream] == ["api", "web", "audit"]
    assert with_rules(parse_config(FILE), "elsewhere/app") == parse_config(FILE)
