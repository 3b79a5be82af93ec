"""Red-team finding: a staff member who may edit admin rules, but never read their secrets,
could send them to a project of their own. A masked value left as •••• kept its stored value
whatever else changed, so changing the rule's target (`project: acme/deploy` → their own
project, or another ref or workflow), adding a target, or widening the rule's projects pattern
delivered the secret to a pipeline they control. A kept value now goes only where it went."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from chains.models import Rule

SECRET = "rule-token-s3cret-9"
RULE = f"""\
variables:
  DEPLOY_TOKEN: {{value: {SECRET}, masked: true}}
downstream:
  - key: deploy
    project: acme/deploy
    variables:
      SIGNING_KEY: {{value: {SECRET}-b, masked: true}}
"""


@pytest.fixture
def editor(db: None) -> Client:
    """Staff who may change rules (not a superuser)."""
    user = User.objects.create_user("sam", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_rule", "change_rule"]))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rule(db: None) -> Rule:
    return Rule.objects.create(name="deploy", projects="acme/*", config=RULE)


def _post(client: Client, rule: Rule, config: str, projects: str = "acme/*") -> Any:
    form = {"name": "deploy", "projects": projects, "enabled": "on", "position": "0"}
    return client.post(
        reverse("admin:chains_rule_change", args=[rule.pk]), {**form, "config": config}
    )


@pytest.mark.parametrize(
    ("change", "projects"),
    [
        (("project: acme/deploy", "project: sam/own"), "acme/*"),
        (("project: acme/deploy", "project: acme/deploy\n    ref: sam-branch"), "acme/*"),
        (("downstream:\n", "downstream:\n  - {key: mine, project: sam/own}\n"), "acme/*"),
        (("", ""), "*"),
    ],
)
def test_a_kept_secret_does_not_follow_a_changed_target(
    editor: Client, rule: Rule, change: tuple[str, str], projects: str
) -> None:
    shown = Rule.objects.get().config
    assert SECRET not in shown
    answer = _post(editor, rule, shown.replace(*change), projects)
    assert answer.status_code == 200  # the form again, with the error
    assert "type it again" in answer.content.decode()
    after = Rule.objects.get()
    assert after.config == shown and after.projects == "acme/*"


def test_a_kept_secret_stays_when_only_other_things_change(editor: Client, rule: Rule) -> None:
    shown = Rule.objects.get().config
    answer = _post(editor, rule, shown.replace("key: deploy", "key: deploy\n    label: Deploy"))
    assert answer.status_code == 302
    parsed = Rule.objects.get().parsed()
    assert parsed.variables[0].value == SECRET
    assert parsed.downstream[0].variables[0].value == SECRET + "-b"
