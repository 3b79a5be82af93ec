"""Teams, their members and grants, identities, users, repositories: every change is audited."""

from __future__ import annotations

import responses
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chains.models import Grant, Identity, Repository, Team
from tests.console.conftest import World, admin_events


def _team_form(world: World, members: list[int], **grants: str) -> dict[str, object]:
    return {
        "name": "release",
        "members": members,
        "grants-TOTAL_FORMS": "1",
        "grants-INITIAL_FORMS": "1",
        "grants-MIN_NUM_FORMS": "0",
        "grants-MAX_NUM_FORMS": "1000",
        "grants-0-id": world.grant.pk,
        "grants-0-team": world.team.pk,
        "grants-0-projects": "acme/*",
        "grants-0-actions": ["view"],
    } | grants


def test_members_and_grants_changed_on_the_team_page_are_audited(
    admin_client: Client, world: World
) -> None:
    newcomer = User.objects.create_user("nina")
    form = _team_form(world, [world.member.pk, newcomer.pk])
    form |= {
        "grants-TOTAL_FORMS": "2",
        "grants-0-actions": ["view", "retry"],
        "grants-1-team": world.team.pk,
        "grants-1-projects": "tools/*",
        "grants-1-actions": ["deploy"],
    }
    url = reverse("admin:chains_team_change", args=[world.team.pk])
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert sorted(world.team.members.values_list("username", flat=True)) == ["nina", "rita"]
    [team] = admin_events("team.change")
    assert (team.before, team.after) == ({"members": ["rita"]}, {"members": ["nina", "rita"]})
    [changed] = admin_events("grant.change")
    assert (changed.before, changed.after) == (
        {"actions": ["view"]},
        {"actions": ["view", "retry"]},
    )
    assert changed.detail["via"] == f"team #{world.team.pk} release"
    [added] = admin_events("grant.add")
    assert added.after is not None
    assert added.after["actions"] == ["deploy"] and added.after["team"] == "release"


def test_a_grant_deleted_from_the_team_page_is_audited(admin_client: Client, world: World) -> None:
    form = _team_form(world, [world.member.pk], **{"grants-0-DELETE": "on"})
    url = reverse("admin:chains_team_change", args=[world.team.pk])
    assert admin_client.post(url, form).status_code == 302
    assert not Grant.objects.exists()
    [event] = admin_events("grant.delete")
    assert event.detail["id"] == world.grant.pk and event.after is None
    assert event.before is not None and event.before["actions"] == ["view"]


def test_deleting_a_team_records_what_went_with_it(admin_client: Client, world: World) -> None:
    url = reverse("admin:chains_team_delete", args=[world.team.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    [event] = admin_events("team.delete")
    assert event.before == {"name": "release", "members": ["rita"]}
    assert event.detail["also_deleted"] == {"chains.Grant": 1, "chains.Team_members": 1}


def test_a_new_team_gets_its_grants_once_saved(admin_client: Client, db: None) -> None:
    page = admin_client.get(reverse("admin:chains_team_add")).content.decode()
    assert "Save the team" in page and "grants-TOTAL_FORMS" not in page
    response = admin_client.post(reverse("admin:chains_team_add"), {"name": "ops"})
    assert response.status_code == 302
    [event] = admin_events("team.add")
    assert event.after == {"name": "ops", "members": []}
    assert Team.objects.get(name="ops")


def test_linking_a_forge_account_is_audited(admin_client: Client, world: World) -> None:
    response = admin_client.post(
        reverse("admin:chains_identity_add"),
        {
            "forge": world.github.pk,
            "username": "rita-gh",
            "user": world.member.pk,
            "remote_id": "",
            "linked_by": "admin",
        },
    )
    assert response.status_code == 302
    assert Identity.objects.filter(username="rita-gh", user=world.member).exists()
    [event] = admin_events("identity.add")
    assert event.after is not None
    assert (event.after["username"], event.after["user"]) == ("rita-gh", "rita")
    found = admin_client.get(reverse("admin:chains_identity_changelist") + "?q=rita@example.com")
    assert "rita-gh" in found.content.decode()


def test_making_someone_superuser_is_audited_without_the_password(
    admin_client: Client, world: World
) -> None:
    url = reverse("admin:auth_user_change", args=[world.member.pk])
    form = {
        "username": "rita",
        "email": "rita@example.com",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = admin_events("user.change")
    assert event.before is not None and event.after is not None
    assert (event.before["is_superuser"], event.after["is_superuser"]) == (False, True)
    assert (event.before["is_staff"], event.after["is_staff"]) == (False, True)
    assert "password" not in event.after
    password = reverse("admin:auth_user_password_change", args=[world.member.pk])
    admin_client.post(
        password,
        {"password1": "a-new-pw-77x", "password2": "a-new-pw-77x", "usable_password": "true"},
    )
    events = admin_events("user.change")
    assert events[-1].after == {"password": "(changed)"}


@responses.activate
def test_check_on_the_forge_fills_in_the_repository(admin_client: Client, world: World) -> None:
    responses.get(
        "https://gl.example.com/api/v4/projects/acme%2Fapp",
        json={
            "id": 42,
            "path_with_namespace": "acme/app",
            "default_branch": "trunk",
            "web_url": "https://gl.example.com/acme/app",
        },
    )
    admin_client.post(
        reverse("admin:chains_repository_changelist"),
        {"action": "check_on_forge", "_selected_action": [world.repository.pk]},
    )
    repository = Repository.objects.get(pk=world.repository.pk)
    assert (repository.remote_id, repository.default_branch) == ("42", "trunk")
    [event] = admin_events("repository.change")
    assert event.before == {"default_branch": "main", "remote_id": "", "web_url": ""}
    assert event.detail["via"] == "check on the forge"


def test_grants_deleted_from_the_list_are_audited_one_by_one(
    admin_client: Client, world: World
) -> None:
    second = Grant.objects.create(user=world.member, projects="*", actions=["view"])
    response = admin_client.post(
        reverse("admin:chains_grant_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [world.grant.pk, second.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not Grant.objects.exists()
    events = admin_events("grant.delete")
    assert sorted(e.detail["id"] for e in events) == sorted([world.grant.pk, second.pk])
    assert {e.before["user"] if e.before else None for e in events} == {None, "rita"}
