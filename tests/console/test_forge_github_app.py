"""Setting up a GitHub App forge in the admin: App id and private key instead of a token, the key
write-only and encrypted, and "Test connection" naming the App and listing its installations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from bots.forges import registry
from chains.models import AuditEvent, Forge
from sandbox.client import SandboxClient
from sandbox.github.apps import new_key_pair
from sandbox.server import SandboxServer, serve_in_thread

PRIVATE_KEY, _ = new_key_pair()
FORM = {
    "name": "GitHub App",
    "kind": "github",
    "slug": "gh-app",
    "api_url": "https://api.github.com",
    "token": "",
    "webhook_secret": "",
    "app_id": "12345",
    "app_private_key": PRIVATE_KEY,
    "bot_username": "",
}


def _errors(response: Any) -> dict[str, list[str]]:
    return dict(response.context["adminform"].form.errors)


def test_an_app_forge_needs_no_token_and_keeps_its_key_secret(
    admin_client: Client, db: None
) -> None:
    response = admin_client.post(reverse("admin:chains_forge_add"), FORM)
    assert response.status_code == 302, _errors(response)
    forge = Forge.objects.get(slug="gh-app")
    assert forge.is_github_app and forge.app_id == 12345 and forge.app_installation
    assert forge.app_private_key == PRIVATE_KEY
    with connection.cursor() as cursor:
        cursor.execute("SELECT app_private_key FROM chains_forge WHERE id = %s", [forge.pk])
        (raw,) = cursor.fetchone()
    assert "PRIVATE KEY" not in raw  # encrypted at rest
    page = admin_client.get(reverse("admin:chains_forge_change", args=[forge.pk])).content
    assert PRIVATE_KEY.splitlines()[1].encode() not in page  # never rendered back
    [event] = AuditEvent.objects.filter(action="forge.add")
    assert event.after is not None and event.after["app_private_key"] == "(set)"
    assert PRIVATE_KEY.splitlines()[1] not in json.dumps(event.after)
    # Saving again without pasting the key keeps it.
    url = reverse("admin:chains_forge_change", args=[forge.pk])
    response = admin_client.post(url, FORM | {"app_private_key": "", "name": "App"})
    assert response.status_code == 302, _errors(response)
    forge.refresh_from_db()
    assert forge.app_private_key == PRIVATE_KEY and forge.name == "App"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"app_id": ""}, "app_id", "Give the App's id with its private key."),
        ({"app_private_key": ""}, "app_private_key", "needs the App's private key"),
        ({"app_private_key": "hunter2"}, "app_private_key", "This is not a private key"),
        ({"kind": "gitlab"}, "app_id", "Only a GitHub forge can be a GitHub App."),
    ],
)
def test_an_incomplete_app_forge_is_refused_in_words(
    admin_client: Client, db: None, change: dict[str, str], field: str, words: str
) -> None:
    response = admin_client.post(reverse("admin:chains_forge_add"), FORM | change)
    assert response.status_code == 200
    assert any(words in message for message in _errors(response)[field])
    assert not Forge.objects.exists()


@pytest.fixture
def sandbox_app() -> Iterator[tuple[SandboxServer, dict[str, Any]]]:
    server = serve_in_thread(port=0)
    control = SandboxClient(server.url)
    for name in ("acme/api", "beta/web"):
        control.create_github_repo(name)
    app = control.register_github_app("baton-ci")
    control.install_github_app(app["id"], "acme")
    control.install_github_app(app["id"], "beta", ["beta/web"])
    yield server, app
    server.shutdown()
    registry._clients.clear()


def test_test_connection_lists_the_installations(
    admin_client: Client, db: None, sandbox_app: tuple[SandboxServer, dict[str, Any]]
) -> None:
    server, app = sandbox_app
    forge = Forge.objects.create(
        kind="github",
        slug="gh-app",
        name="GitHub App",
        api_url=f"{server.url}/api/v3",
        webhook_secret="w",
        app_id=app["id"],
        app_private_key=app["private_key"],
        app_installation=True,
    )
    url = reverse("admin:chains_forge_test_connection", args=[forge.pk])
    response = admin_client.post(url, follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("GitHub App: connected as baton-ci[bot].")
    assert "Installations: acme (#1, all repositories), beta (#2, selected repositories)." in (
        message
    )
    forge.refresh_from_db()
    assert forge.bot_username == "baton-ci[bot]"
