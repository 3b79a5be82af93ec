"""One of everything the admin shows, with secrets easy to look for in the HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from chains import audit
from chains.models import (
    AuditEvent,
    Chain,
    Delivery,
    Forge,
    Grant,
    Identity,
    Quarantine,
    Repository,
    Rule,
    Run,
    Team,
)

GITLAB_TOKEN = "glpat-TOKEN-never-shown-1"
GITLAB_SECRET = "hook-SECRET-never-shown-2"
GITHUB_TOKEN = "ghp_TOKEN-never-shown-3"
GITHUB_SECRET = "hook-SECRET-never-shown-4"
SECRETS = [GITLAB_TOKEN, GITLAB_SECRET, GITHUB_TOKEN, GITHUB_SECRET]
RULE = """\
variables: {STREAM: rule}
downstream:
  - {key: api, project: acme/api, ref: release}
"""


@dataclass
class World:
    gitlab: Forge
    github: Forge
    repository: Repository
    chain: Chain
    delivery: Delivery
    rule: Rule
    team: Team
    grant: Grant
    identity: Identity
    member: User


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db: None) -> World:
    gitlab = Forge.objects.create(
        kind=Forge.Kind.GITLAB,
        slug="gl",
        name="GitLab",
        api_url="https://gl.example.com",
        token=GITLAB_TOKEN,
        webhook_secret=GITLAB_SECRET,
    )
    github = Forge.objects.create(
        kind=Forge.Kind.GITHUB,
        slug="gh",
        name="GitHub",
        api_url="http://github.test:80/api/v3",
        token=GITHUB_TOKEN,
        webhook_secret=GITHUB_SECRET,
        app_installation=True,
    )
    repository = Repository.objects.create(forge=gitlab, path="acme/app", default_branch="main")
    delivery = Delivery.objects.create(
        forge=gitlab,
        event="Merge Request Hook",
        dedupe_key="k1",
        payload={"object_kind": "merge_request", "project": {"path_with_namespace": "acme/app"}},
        outcome=Delivery.Outcome.FAILED,
        detail="internal error: KeyError",
    )
    chain = Chain.objects.create(
        forge=gitlab,
        repository=repository,
        delivery=delivery,
        change_number=7,
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/7/head",
        reason="opened",
    )
    Run.objects.create(
        chain=chain, key="api", repository=repository, ref="main", masked_variables={"K": "v"}
    )
    member = User.objects.create_user("rita", email="rita@example.com", password="pw-rita-1")
    team = Team.objects.create(name="release")
    team.members.add(member)
    grant = Grant.objects.create(team=team, projects="acme/*", actions=["view"])
    identity = Identity.objects.create(forge=gitlab, username="rita.gl", user=member)
    rule = Rule.objects.create(name="api on release", projects="acme/*", config=RULE)
    Quarantine.objects.create(
        repository=repository,
        reason="the fixture's",
        expires_at=timezone.now() + timedelta(days=1),
        created_by="ada",
    )
    audit.record(
        "chain.start", actor="rita.gl", surface="webhook", chain=chain, target="acme/app!7"
    )
    return World(gitlab, github, repository, chain, delivery, rule, team, grant, identity, member)


def admin_events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, surface="admin").order_by("pk"))
