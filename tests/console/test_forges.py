"""Forges: test connection against a faked forge, the secret on demand, write-only credentials."""

from __future__ import annotations

import json

import responses
from django.test import Client
from django.urls import reverse

from chains.models import AuditEvent, Forge
from tests.console.conftest import GITLAB_SECRET, GITLAB_TOKEN, SECRETS, World, admin_events


def _messages(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def _no_secret_in_the_audit_log() -> None:
    for event in AuditEvent.objects.all():
        text = json.dumps([event.before, event.after, event.detail, event.target])
        for secret in SECRETS:
            assert secret not in text


@responses.activate
def test_test_connection_shows_the_account_and_keeps_it(admin_client: Client, world: World) -> None:
    responses.get("https://gl.example.com/api/v4/user", json={"id": 3, "username": "baton-bot"})
    url = reverse("admin:chains_forge_test_connection", args=[world.gitlab.pk])
    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    assert "GitLab: connected as baton-bot. Saved as Baton's bot username." in _messages(response)
    assert responses.calls[0].request.headers["PRIVATE-TOKEN"] == GITLAB_TOKEN
    world.gitlab.refresh_from_db()
    assert world.gitlab.bot_username == "baton-bot"
    [event] = admin_events("forge.change")
    assert (event.before, event.after) == ({"bot_username": ""}, {"bot_username": "baton-bot"})
    assert event.detail["via"] == "test connection"
    assert event.actor == "admin"


@responses.activate
def test_test_connection_reports_a_401_in_words(admin_client: Client, world: World) -> None:
    responses.get(
        "https://gl.example.com/api/v4/user", status=401, json={"message": "401 Unauthorized"}
    )
    url = reverse("admin:chains_forge_test_connection", args=[world.gitlab.pk])
    [message] = _messages(admin_client.post(url, follow=True))
    assert message.startswith("GitLab: not connected. read the token's account: GitLab said 401")
    assert "The token is wrong, expired or revoked" in message
    world.gitlab.refresh_from_db()
    assert world.gitlab.bot_username == ""
    assert not admin_events("forge.change")


@responses.activate
def test_test_connection_as_a_list_action_on_github(admin_client: Client, world: World) -> None:
    responses.get("http://github.test:80/api/v3/user", json={"login": "baton[bot]"})
    response = admin_client.post(
        reverse("admin:chains_forge_changelist"),
        {"action": "test_connection_action", "_selected_action": [world.github.pk]},
        follow=True,
    )
    assert "GitHub: connected as baton[bot]. Saved as Baton's bot username." in _messages(response)
    assert responses.calls[0].request.headers["Authorization"] == "token ghp_TOKEN-never-shown-3"


@responses.activate
def test_an_app_token_that_may_not_read_user_gets_a_hint(
    admin_client: Client, world: World
) -> None:
    responses.get(
        "http://github.test:80/api/v3/user",
        status=403,
        json={"message": "Resource not accessible by integration"},
    )
    url = reverse("admin:chains_forge_test_connection", args=[world.github.pk])
    [message] = _messages(admin_client.post(url, follow=True))
    assert "GitHub said 403: Resource not accessible by integration" in message
    assert "<app-slug>[bot]" in message


def test_the_secret_is_fetched_on_demand_and_audited(admin_client: Client, world: World) -> None:
    url = reverse("admin:chains_forge_webhook_secret", args=[world.gitlab.pk])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response.json() == {"secret": GITLAB_SECRET}
    assert "no-store" in response["Cache-Control"]
    [event] = admin_events("forge.reveal_secret")
    assert event.target.startswith("forge #") and event.before is None
    _no_secret_in_the_audit_log()


def test_a_new_secret_replaces_the_old_one(admin_client: Client, world: World) -> None:
    url = reverse("admin:chains_forge_new_secret", args=[world.gitlab.pk])
    response = admin_client.post(url, follow=True)
    assert any("has a new webhook secret" in m for m in _messages(response))
    world.gitlab.refresh_from_db()
    assert world.gitlab.webhook_secret != GITLAB_SECRET and len(world.gitlab.webhook_secret) >= 32
    [event] = admin_events("forge.new_secret")
    assert event.before == event.after == {"webhook_secret": "(changed)"}
    assert world.gitlab.webhook_secret not in response.content.decode()


FORM = {
    "name": "GitLab",
    "kind": "gitlab",
    "slug": "gl",
    "api_url": "https://gl.example.com",
    "token": "",
    "webhook_secret": "",
    "bot_username": "",
}


def test_empty_credentials_keep_the_stored_ones(admin_client: Client, world: World) -> None:
    url = reverse("admin:chains_forge_change", args=[world.gitlab.pk])
    response = admin_client.post(url, FORM | {"name": "GitLab (company)"})
    assert response.status_code == 302
    world.gitlab.refresh_from_db()
    assert (world.gitlab.token, world.gitlab.webhook_secret) == (GITLAB_TOKEN, GITLAB_SECRET)
    [event] = admin_events("forge.change")
    assert (event.before, event.after) == ({"name": "GitLab"}, {"name": "GitLab (company)"})


def test_a_new_token_is_audited_as_changed_never_as_its_value(
    admin_client: Client, world: World
) -> None:
    url = reverse("admin:chains_forge_change", args=[world.gitlab.pk])
    admin_client.post(url, FORM | {"token": "glpat-NEW-token-5", "forge_permissions": "on"})
    world.gitlab.refresh_from_db()
    assert world.gitlab.token == "glpat-NEW-token-5" and world.gitlab.forge_permissions
    [event] = admin_events("forge.change")
    assert event.before == {"forge_permissions": False, "token": "(changed)"}
    assert event.after == {"forge_permissions": True, "token": "(changed)"}
    assert "glpat-NEW-token-5" not in json.dumps([event.before, event.after])
    page = admin_client.get(url).content.decode()
    assert "glpat-NEW-token-5" not in page


def test_a_new_forge_gets_a_random_secret_and_needs_a_token(admin_client: Client, db: None) -> None:
    add = reverse("admin:chains_forge_add")
    form = FORM | {"slug": "new", "kind": "github", "api_url": "https://api.github.com"}
    refused = admin_client.post(add, form)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["token"] == ["A new forge needs its token."]
    response = admin_client.post(add, form | {"token": "ghp_new-6"}, follow=True)
    assert any("Baton made a random webhook secret" in m for m in _messages(response))
    forge = Forge.objects.get(slug="new")
    assert forge.token == "ghp_new-6" and len(forge.webhook_secret) >= 32
    [event] = admin_events("forge.add")
    assert event.after is not None
    assert event.after["token"] == event.after["webhook_secret"] == "(set)"
    assert event.after["slug"] == "new"


def test_app_installation_is_for_github_only(admin_client: Client, world: World) -> None:
    url = reverse("admin:chains_forge_change", args=[world.gitlab.pk])
    response = admin_client.post(url, FORM | {"app_installation": "on"})
    assert response.context["adminform"].form.errors["app_installation"] == [
        "Only a GitHub forge uses an App installation."
    ]


def test_a_forge_whose_webhooks_went_quiet_says_so_on_the_list_and_its_page(
    admin_client: Client, world: World
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from chains.models import Run

    long_ago = timezone.now() - timedelta(minutes=7, seconds=10)
    Forge.objects.filter(pk=world.gitlab.pk).update(hooks_seen_at=long_ago)
    changelist = reverse("admin:chains_forge_changelist")
    page = reverse("admin:chains_forge_change", args=[world.gitlab.pk])
    message = "no webhooks from GitLab for 7 minutes"
    # No open run the forge has: quiet is no news.
    assert message not in admin_client.get(changelist).content.decode()

    Run.objects.filter(chain=world.chain).update(
        status="running", dispatch=Run.Dispatch.SENT, remote_id="11", triggered_at=long_ago
    )
    assert message in admin_client.get(changelist).content.decode()
    response = admin_client.get(page)
    assert any(m.startswith(message) for m in _messages(response))
    assert message in response.content.decode()

    Forge.objects.filter(pk=world.gitlab.pk).update(hooks_seen_at=timezone.now())
    assert message not in admin_client.get(changelist).content.decode()
    assert not _messages(admin_client.get(page))
