"""Sign in with GitLab / GitHub through the sandbox forge's OAuth 2 flow (real HTTP between
allauth and the sandbox, Django's test client as the browser): the account becomes the
person's identity there, with verified e-mail and groups, and grants naming a group count."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialToken
from django.test import Client

from bots.permissions import Person
from chains.models import AuditEvent, Forge, ForgeMembership, Grant, Identity
from chains.policy import user_may
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, serve_in_thread
from tests import factories as f
from tests import signin_setup

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    found = serve_in_thread()
    yield found
    found.shutdown()


@pytest.fixture
def forge_site(
    server: SandboxServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Sandbox GitLab and GitHub forges, an OAuth application on each, Baton configured to sign
    in with both, and alice in GitLab group acme/platform and GitHub team acme/release."""
    url = server.url
    sandbox = SandboxClient(url)
    sandbox.reset()
    apps = signin_setup.configure(sandbox, "http://testserver", settings, monkeypatch)
    for name in ("alice", "bob"):
        requests.put(f"{url}/_sandbox/users/{name}", json={}, timeout=5)
    sandbox.set_group_member("acme/platform", "alice")
    sandbox.set_team_member("acme", "release", "alice")
    gitlab = Forge.objects.create(
        kind="gitlab", slug="gitlab", name="GitLab", api_url=url, token="t", webhook_secret="s"
    )
    github = Forge.objects.create(
        kind="github",
        slug="github",
        name="GitHub",
        api_url=f"{url}/api/v3",
        token="t",
        webhook_secret="s",
    )
    yield {"url": url, "gitlab": gitlab, "github": github, "apps": apps, "server": server}
    sandbox.reset()


def sign_in(
    client: Client,
    site: dict[str, Any],
    kind: str,
    username: str,
    next_url: str = "/",
    tamper_state: bool = False,
) -> Any:
    """The whole dance: Baton's button, the forge's authorize page, the callback."""
    start = client.post(f"/accounts/{kind}/login/", {"process": "login", "next": next_url})
    assert start.status_code == 302, start
    authorize = urlsplit(start["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == site["url"]
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["state"]
    page = requests.get(start["Location"], timeout=5)
    assert page.status_code == 200 and "Authorize" in page.text
    answer = requests.post(
        f"{site['url']}{authorize.path}",
        data={**params, "username": username, "decision": "authorize"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    query = (
        back.query.replace(f"state={params['state']}", "state=forged")
        if tamper_state
        else (back.query)
    )
    return client.get(f"{back.path}?{query}")


@pytest.mark.parametrize(
    ("kind", "group"), [("gitlab", "acme/platform"), ("github", "acme/release")]
)
def test_signing_in_links_the_account_with_its_verified_email_and_groups(
    forge_site: dict[str, Any], kind: str, group: str
) -> None:
    client = Client()
    done = sign_in(client, forge_site, kind, "alice")
    assert done.status_code == 302 and done["Location"] == "/"
    identity = Identity.objects.get(forge=forge_site[kind], username="alice")
    assert identity.linked_by == Identity.Link.SIGNIN
    assert identity.email == "alice@example.com"
    assert identity.user.email == "alice@example.com"
    assert [m.name for m in identity.memberships.all()] == [group]
    assert client.get("/").status_code == 200  # signed in
    assert not SocialToken.objects.exists()  # the forge token is not kept
    assert AuditEvent.objects.filter(action="identity.link", target__startswith="alice").exists()


def test_a_grant_to_the_group_lets_the_forge_account_trigger_from_a_comment(
    forge_site: dict[str, Any],
) -> None:
    repo = f.repository("acme/app", on=forge_site["gitlab"])
    Grant.objects.create(
        forge=forge_site["gitlab"],
        forge_group="ACME/Platform",
        projects="acme/*",
        actions=["view", "trigger"],
    )
    before = Person(forge_site["gitlab"], "alice").may("trigger", repo)
    assert not before and "not linked to a Baton user" in before.reason
    sign_in(Client(), forge_site, "gitlab", "alice")
    verdict = Person(forge_site["gitlab"], "alice").may("trigger", repo)
    assert verdict, verdict.reason
    assert "forge group acme/platform" in verdict.reason
    # bob signed in too but is in no group: linked, and refused by the policy instead.
    sign_in(Client(), forge_site, "gitlab", "bob")
    refused = Person(forge_site["gitlab"], "bob").may("trigger", repo)
    assert not refused and "no grant gives bob trigger" in refused.reason


def test_an_account_an_admin_linked_signs_in_as_that_user(forge_site: dict[str, Any]) -> None:
    rita = f.user("rita", email="rita@corp.example")
    Identity.objects.create(forge=forge_site["github"], username="alice", user=rita)
    client = Client()
    sign_in(client, forge_site, "github", "alice")
    identity = Identity.objects.get(forge=forge_site["github"], username="alice")
    assert identity.user == rita and identity.remote_id
    assert client.session["_auth_user_id"] == str(rita.pk)


@pytest.mark.parametrize("kind", ["gitlab", "github"])
def test_a_local_user_with_the_verified_email_is_the_one_signed_in(
    forge_site: dict[str, Any], kind: str
) -> None:
    local = f.user("alice.local", email="ALICE@example.com")
    client = Client()
    sign_in(client, forge_site, kind, "alice")
    assert client.session["_auth_user_id"] == str(local.pk)
    assert Identity.objects.get(forge=forge_site[kind], username="alice").user == local


@pytest.mark.parametrize("kind", ["gitlab", "github"])
def test_an_administrator_is_never_matched_by_email(forge_site: dict[str, Any], kind: str) -> None:
    admin = f.user("root", superuser=True, email="alice@example.com", is_staff=True)
    client = Client()
    sign_in(client, forge_site, kind, "alice")
    signed_in = client.session["_auth_user_id"]
    assert signed_in != str(admin.pk)
    identity = Identity.objects.get(forge=forge_site[kind], username="alice")
    assert identity.user.pk == int(signed_in) and not identity.user.is_superuser
    assert identity.email == "alice@example.com"


def test_a_callback_with_another_state_signs_nobody_in(forge_site: dict[str, Any]) -> None:
    client = Client()
    answer = sign_in(client, forge_site, "gitlab", "alice", tamper_state=True)
    assert "_auth_user_id" not in client.session
    assert answer.status_code == 401
    assert not Identity.objects.exists()
    # The code was never exchanged: allauth refused before talking to the forge.
    asked = SandboxClient(forge_site["url"]).requests()
    assert not [r for r in asked if r["path"] == "/oauth/token"]


def test_next_never_leaves_the_site(forge_site: dict[str, Any]) -> None:
    client = Client()
    done = sign_in(client, forge_site, "github", "alice", next_url="https://evil.example/x")
    assert done.status_code == 302
    assert not done["Location"].startswith(("http", "//"))


def test_the_forge_redirect_uri_must_be_the_registered_one(forge_site: dict[str, Any]) -> None:
    app = forge_site["apps"]["gitlab"]
    answer = requests.get(
        f"{forge_site['url']}/oauth/authorize",
        params={
            "client_id": app["client_id"],
            "redirect_uri": "https://evil.example/cb",
            "response_type": "code",
            "state": "x",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_the_login_page_offers_the_configured_forges(forge_site: dict[str, Any]) -> None:
    page = Client().get("/login/").content.decode()
    assert "Sign in with GitLab" in page and "Sign in with GitHub" in page
    assert 'name="password"' in page  # local accounts still sign in


def test_memberships_stop_counting_when_stale(forge_site: dict[str, Any], settings: Any) -> None:
    repo = f.repository("acme/app", on=forge_site["gitlab"])
    Grant.objects.create(
        forge=forge_site["gitlab"],
        forge_group="acme/platform",
        projects="acme/*",
        actions=["trigger"],
    )
    sign_in(Client(), forge_site, "gitlab", "alice")
    identity = Identity.objects.get(forge=forge_site["gitlab"], username="alice")
    assert user_may(identity.user, "trigger", repo)
    assert identity.groups_read_at is not None
    identity.groups_read_at -= timedelta(seconds=settings.BATON_SIGNIN_GROUPS_MAX_AGE + 1)
    identity.save()
    fresh_user = type(identity.user).objects.get(pk=identity.user.pk)
    assert not user_may(fresh_user, "trigger", repo)
    assert ForgeMembership.objects.filter(identity=identity).exists()


def test_with_sign_up_closed_an_unknown_account_signs_nobody_in(
    forge_site: dict[str, Any], settings: Any
) -> None:
    settings.BATON_SIGNIN_SIGNUP = False
    client = Client()
    answer = sign_in(client, forge_site, "gitlab", "alice")
    assert "_auth_user_id" not in client.session
    assert answer.status_code == 200 and b"closed" in answer.content.lower()
    assert not Identity.objects.exists()


@pytest.mark.parametrize("kind", ["gitlab", "github"])
def test_forge_tokens_are_never_logged_stored_or_shown(
    forge_site: dict[str, Any], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client()
    sign_in(client, forge_site, kind, "alice")
    tokens = list(forge_site["server"].sandbox.oauth.tokens)
    assert tokens
    # Baton's own log lines (the sandbox forge's request log is the forge's, not Baton's).
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("sandbox")]
    page = client.get("/").content.decode()
    for token in tokens:
        assert not any(token in line for line in ours)
        assert token not in page
    assert not SocialToken.objects.exists()
