"""Forge memberships read at sign-in, and how they map to grants through the policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import responses
from django.core.exceptions import ValidationError
from django.utils import timezone

from bots import signin
from bots.forges import signin as forge_signin
from bots.forges.base import ForgeError
from chains.models import Forge, ForgeMembership, Grant, Identity
from chains.policy import user_may
from tests import factories as f

pytestmark = pytest.mark.django_db


def member(user: Any, forge: Forge, *groups: str, age: float = 0.0) -> Identity:
    identity = Identity.objects.create(
        forge=forge,
        username=user.username,
        user=user,
        linked_by=Identity.Link.SIGNIN,
        groups_read_at=timezone.now() - timedelta(seconds=age),
    )
    for name in groups:
        ForgeMembership.objects.create(identity=identity, name=name)
    return identity


def fresh(user: Any) -> Any:
    return type(user).objects.get(pk=user.pk)  # no grants remembered from an earlier question


def test_a_group_grant_counts_on_its_own_forge_only() -> None:
    gitlab, github = f.forge("gitlab"), f.forge("github")
    on_gitlab, on_github = f.repository("acme/app", on=gitlab), f.repository("acme/app", on=github)
    dora = f.user("dora")
    member(dora, gitlab, "acme/platform")
    Grant.objects.create(
        forge=gitlab, forge_group="acme/platform", projects="acme/*", actions=["trigger"]
    )
    assert user_may(fresh(dora), "trigger", on_gitlab).reason == (
        "dora may trigger acme/app through forge group acme/platform"
    )
    assert not user_may(fresh(dora), "trigger", on_github)
    # The same group name on another forge is another group.
    Grant.objects.create(
        forge=github, forge_group="acme/platform", projects="acme/*", actions=["trigger"]
    )
    assert not user_may(fresh(dora), "trigger", on_github)


def test_a_group_name_matches_exactly_not_a_parent_or_a_prefix() -> None:
    gitlab = f.forge("gitlab")
    repo = f.repository("acme/app", on=gitlab)
    dora = f.user("dora")
    member(dora, gitlab, "acme/platform-team")
    for name in ("acme", "acme/platform", "acme/platform-team/sub"):
        Grant.objects.create(forge=gitlab, forge_group=name, projects="*", actions=["trigger"])
    assert not user_may(fresh(dora), "trigger", repo)


def test_memberships_older_than_the_max_age_grant_nothing(settings: Any) -> None:
    gitlab = f.forge("gitlab")
    repo = f.repository("acme/app", on=gitlab)
    old, new = f.user("old"), f.user("new")
    member(old, gitlab, "acme/platform", age=settings.BATON_SIGNIN_GROUPS_MAX_AGE + 5)
    member(new, gitlab, "acme/platform", age=settings.BATON_SIGNIN_GROUPS_MAX_AGE - 60)
    Grant.objects.create(forge=gitlab, forge_group="acme/platform", projects="*", actions=["view"])
    assert not user_may(fresh(old), "view", repo)
    assert user_may(fresh(new), "view", repo)


def test_memberships_that_could_not_be_read_grant_nothing() -> None:
    gitlab = f.forge("gitlab")
    repo = f.repository("acme/app", on=gitlab)
    dora = f.user("dora")
    identity = member(dora, gitlab, "acme/platform")
    identity.groups_read_at = None
    identity.save()
    Grant.objects.create(forge=gitlab, forge_group="acme/platform", projects="*", actions=["view"])
    assert not user_may(fresh(dora), "view", repo)


def test_a_grant_to_a_forge_group_names_its_forge_and_a_well_formed_group() -> None:
    with pytest.raises(ValidationError, match="names its forge"):
        Grant(forge_group="acme/platform", projects="*", actions=["view"]).clean()
    gitlab = f.forge("gitlab")
    with pytest.raises(ValidationError, match="group path"):
        Grant(forge=gitlab, forge_group="acme platform", projects="*", actions=["view"]).clean()
    with pytest.raises(ValidationError, match="one of them"):
        Grant(
            forge=gitlab, forge_group="acme", user=f.user("u"), projects="*", actions=["view"]
        ).clean()
    grant = Grant.objects.create(
        forge=gitlab, forge_group=" /Acme/Platform/ ", projects="*", actions=["view"]
    )
    assert grant.forge_group == "acme/platform"


def test_link_moves_a_name_to_the_account_that_holds_it_now() -> None:
    gitlab = f.forge("gitlab")
    old_owner, new_owner = f.user("old"), f.user("new")
    Identity.objects.create(forge=gitlab, username="sam", remote_id="1", user=old_owner)
    Identity.objects.create(forge=gitlab, username="sammy", remote_id="2", user=new_owner)
    # Account 2 renamed itself "sam" (account 1 is now someone else's or gone).
    signin.link(gitlab, new_owner, username="sam", remote_id="2", email="", groups=["g"])
    (identity,) = Identity.objects.filter(forge=gitlab, user=new_owner)
    assert (identity.username, identity.remote_id) == ("sam", "2")
    assert not Identity.objects.filter(remote_id="1").exists()
    assert [m.name for m in identity.memberships.all()] == ["g"]


def test_an_account_signs_in_as_its_linked_user_only_when_the_ids_agree() -> None:
    gitlab = f.forge("gitlab")
    rita = f.user("rita")
    Identity.objects.create(forge=gitlab, username="sam", remote_id="1", user=rita)
    assert signin.user_of(gitlab, "sam", "1") == rita
    assert signin.user_of(gitlab, "SAM", "1") == rita
    assert signin.user_of(gitlab, "sam", "99") is None  # the name, another account


def test_forge_of_picks_the_one_forge_of_that_kind_on_that_host(settings: Any) -> None:
    gitlab = Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GL",
        api_url="https://git.example.com/",
        token="t",
        webhook_secret="s",
    )
    Forge.objects.create(
        kind="github",
        slug="gh",
        name="GH",
        api_url="https://git.example.com/api/v3",
        token="t",
        webhook_secret="s",
    )
    assert signin.forge_of("gitlab", "https://git.example.com") == gitlab
    assert signin.forge_of("gitlab", "https://other.example.com") is None
    settings.BATON_SIGNIN_FORGES = {"github": "gh"}
    named = signin.forge_of("github", "https://anything.example.com")
    assert named is not None and named.slug == "gh"


def test_clean_names_keeps_well_formed_names_lower_cased() -> None:
    names = ["Acme/Platform", "acme/platform", "x" * 300, "a b", "", 7, None, "acme/<script>"]
    assert forge_signin.clean_names(names) == ["acme/platform"]


@responses.activate
def test_gitlab_groups_sends_the_token_in_a_header_and_reads_a_bounded_number_of_pages() -> None:
    page = [{"full_path": f"g/{i}"} for i in range(forge_signin.PER_PAGE)]
    responses.get("https://gl.example.com/api/v4/groups", json=page)
    groups = forge_signin.gitlab_groups("https://gl.example.com", "secret-token")
    assert len(responses.calls) == forge_signin.MAX_PAGES
    assert len(groups) == forge_signin.PER_PAGE
    call = responses.calls[0].request
    assert call.headers["Authorization"] == "Bearer secret-token"
    assert "secret-token" not in (call.url or "")
    assert "min_access_level=10" in (call.url or "")


@responses.activate
def test_github_teams_are_org_slash_team() -> None:
    responses.get(
        "https://gh.example.com/api/v3/user/teams",
        json=[
            {"slug": "release", "organization": {"login": "Acme"}},
            {"slug": "no-org"},
            {"slug": ["bad"], "organization": {"login": "acme"}},
        ],
    )
    teams = forge_signin.github_teams("https://gh.example.com/api/v3", "t")
    assert teams == ["acme/release"]


@responses.activate
def test_a_refusal_is_a_forge_error_without_the_token() -> None:
    responses.get("https://gl.example.com/api/v4/groups", status=403, json={"error": "scope"})
    with pytest.raises(ForgeError) as raised:
        forge_signin.gitlab_groups("https://gl.example.com", "secret-token")
    assert raised.value.permanent and "secret-token" not in str(raised.value)


def test_gitlab_email_counts_only_when_confirmed() -> None:
    assert forge_signin.gitlab_verified_email({"email": "a@x.io", "confirmed_at": "2024"}) == (
        "a@x.io"
    )
    assert forge_signin.gitlab_verified_email({"email": "a@x.io", "confirmed_at": None}) == ""
    assert forge_signin.gitlab_verified_email({"email": "nope", "confirmed_at": "2024"}) == ""
