"""A staff user without superuser rights could point a forge's API URL at their own listener and
press "Test connection" with the token field empty, receiving the stored token. Now a new API
URL needs the token typed again, and only superusers or people with "Can set up forges"
(chains.manage_forge) may add, change, delete or test a forge."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from chains.models import AuditEvent, Forge

TOKEN = "glpat-stored-token-h7"
LISTENER = "https://listener.attacker.test"


@pytest.fixture
def forge(db: None) -> Forge:
    return Forge.objects.create(
        kind=Forge.Kind.GITLAB,
        slug="gl",
        name="GitLab",
        api_url="https://gl.example.com",
        token=TOKEN,
        webhook_secret="hook-secret",
    )


def _staff(client: Client, *codenames: str) -> User:
    user = User.objects.create_user("stan", password="pw-stan-1", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return user


def _form(forge: Forge, **changes: Any) -> dict[str, Any]:
    return {
        "name": forge.name,
        "kind": forge.kind,
        "slug": forge.slug,
        "api_url": forge.api_url,
        "token": "",
        "webhook_secret": "",
        "bot_username": forge.bot_username,
        **changes,
    }


def _no_token_left_for_the_listener() -> None:
    assert not [c for c in responses.calls if str(c.request.url).startswith(LISTENER)]


@responses.activate
def test_staff_with_change_permission_may_not_repoint_a_forge(client: Client, forge: Forge) -> None:
    responses.get(f"{LISTENER}/api/v4/user", json={"username": "got-it"})
    _staff(client, "view_forge", "change_forge")
    url = reverse("admin:chains_forge_change", args=[forge.pk])
    assert client.post(url, _form(forge, api_url=LISTENER)).status_code == 403
    test = reverse("admin:chains_forge_test_connection", args=[forge.pk])
    assert client.post(test).status_code == 403
    forge.refresh_from_db()
    assert forge.api_url == "https://gl.example.com"
    _no_token_left_for_the_listener()
    assert not AuditEvent.objects.filter(action="forge.change").exists()


@responses.activate
def test_a_viewer_sees_the_forge_but_never_its_credentials(client: Client, forge: Forge) -> None:
    _staff(client, "view_forge")
    page = client.get(reverse("admin:chains_forge_change", args=[forge.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert TOKEN not in html and "hook-secret" not in html
    assert ">Test connection</button>" not in html


@responses.activate
def test_a_new_api_url_needs_the_token_typed_again(admin_client: Client, forge: Forge) -> None:
    responses.get(f"{LISTENER}/api/v4/user", json={"username": "got-it"})
    url = reverse("admin:chains_forge_change", args=[forge.pk])
    page = admin_client.post(url, _form(forge, api_url=LISTENER))
    assert page.status_code == 200  # the form again, with the error
    assert "You changed the API URL or the kind: type the token again" in page.content.decode()
    forge.refresh_from_db()
    assert forge.api_url == "https://gl.example.com"
    # Test connection still asks the forge the token was entered for.
    responses.get("https://gl.example.com/api/v4/user", json={"username": "baton-bot"})
    admin_client.post(reverse("admin:chains_forge_test_connection", args=[forge.pk]))
    _no_token_left_for_the_listener()
    [call] = responses.calls
    assert call.request.url == "https://gl.example.com/api/v4/user"


@responses.activate
def test_someone_allowed_to_manage_forges_repoints_with_a_new_token(
    client: Client, forge: Forge
) -> None:
    _staff(client, "view_forge", "change_forge", "manage_forge")
    url = reverse("admin:chains_forge_change", args=[forge.pk])
    response = client.post(url, _form(forge, api_url="https://gitlab.example.org", token="new-t"))
    assert response.status_code == 302
    forge.refresh_from_db()
    assert (forge.api_url, forge.token) == ("https://gitlab.example.org", "new-t")
    [event] = AuditEvent.objects.filter(action="forge.change")
    assert event.after == {"api_url": "https://gitlab.example.org", "token": "(changed)"}
