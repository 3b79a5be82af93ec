"""The permission policy: grants to teams and users, patterns, forges, and reasons in words."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from chains.models import Forge, Grant, Identity, Repository, Team
from chains.policy import person_may, user_may, visible

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, object]:
    users = get_user_model().objects
    gitlab = Forge.objects.create(
        kind="gitlab", slug="gl", name="GitLab", api_url="http://gl", token="t", webhook_secret="s"
    )
    github = Forge.objects.create(
        kind="github", slug="gh", name="GitHub", api_url="http://gh", token="t", webhook_secret="s"
    )
    release = Team.objects.create(name="Release managers")
    rm = users.create_user("rm")
    dev = users.create_user("dev")
    release.members.add(rm)
    Grant.objects.create(team=release, projects="acme/*", actions=["view", "retry", "cancel"])
    Grant.objects.create(user=dev, projects="acme/api", actions=["trigger"], forge=gitlab)
    Grant.objects.create(user=dev, projects="tools/**", actions=["admin"])
    Identity.objects.create(forge=gitlab, username="dev-on-gitlab", user=dev)
    return {
        "rm": rm,
        "dev": dev,
        "root": users.create_superuser("root", "r@x", "pw"),
        "nobody": users.create_user("nobody"),
        "gitlab": gitlab,
        "github": github,
        "api": Repository.objects.create(forge=gitlab, path="acme/api"),
        "gh_api": Repository.objects.create(forge=github, path="acme/api"),
        "deep": Repository.objects.create(forge=github, path="tools/a/b"),
        "other": Repository.objects.create(forge=gitlab, path="other/x"),
    }


@pytest.mark.parametrize(
    ("who", "action", "repo", "allowed"),
    [
        ("rm", "retry", "api", True),
        ("rm", "trigger", "api", False),
        ("rm", "view", "other", False),
        ("dev", "trigger", "api", True),
        ("dev", "trigger", "gh_api", False),  # the grant names the GitLab forge only
        ("dev", "deploy", "deep", True),  # admin covers every action; ** crosses levels
        ("nobody", "view", "api", False),
        ("root", "deploy", "other", True),
    ],
)
def test_matrix(world: dict[str, object], who: str, action: str, repo: str, allowed: bool) -> None:
    verdict = user_may(world[who], action, world[repo])  # type: ignore[arg-type]
    assert verdict.allowed is allowed
    assert verdict.reason


def test_reasons_name_the_person_the_action_and_the_project(world: dict[str, object]) -> None:
    denied = user_may(world["rm"], "trigger", world["api"])  # type: ignore[arg-type]
    assert denied.reason == "no grant gives rm trigger on acme/api"
    granted = user_may(world["rm"], "retry", world["api"])  # type: ignore[arg-type]
    assert granted.reason == "rm may retry acme/api through team Release managers"


def test_forge_accounts_act_through_their_linked_user(world: dict[str, object]) -> None:
    gitlab = world["gitlab"]
    assert person_may(gitlab, "dev-on-gitlab", "trigger", world["api"])  # type: ignore[arg-type]
    stranger = person_may(gitlab, "mallory", "view", world["api"])  # type: ignore[arg-type]
    assert not stranger and stranger.reason == "mallory on GitLab is not linked to a Baton user"


def test_visible(world: dict[str, Any]) -> None:
    repos = [world["api"], world["gh_api"], world["other"]]
    assert visible(world["rm"], repos) == {world["api"].pk, world["gh_api"].pk}
    assert visible(world["nobody"], repos) == set()
