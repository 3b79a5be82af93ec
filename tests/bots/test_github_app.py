"""A GitHub App forge against the sandbox: one forge row serves several installations, finds the
installation of each repository once, mints installation tokens with PyGithub's App support,
keeps one per installation in the database (encrypted, shared by every process), renews it before
it expires, and mints once more when GitHub refuses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from bots.forges import registry
from bots.forges.base import ForgeError
from bots.forges.github import GitHubForge
from chains.models import AppInstallation, Forge
from chains.status import Status
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, serve_in_thread

HOUR_IN_SECONDS = 2.4  # the sandbox's hour: tokens live 2.4 s and are renewed 0.2 s early


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    server = serve_in_thread(port=0, time_scale=3600 / HOUR_IN_SECONDS)
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxClient:
    client = SandboxClient(server.url)
    client.reset()
    cache.clear()
    return client


@pytest.fixture
def app(sandbox: SandboxClient) -> dict[str, Any]:
    """App "baton" on acme (every repository) and on beta (one repository)."""
    for name in ("acme/api", "beta/web", "gamma/other"):
        sandbox.create_github_repo(name, files={"README.md": "hi\n"})
    app = sandbox.register_github_app("baton")
    app["acme"] = sandbox.install_github_app(app["id"], "acme")["id"]
    app["beta"] = sandbox.install_github_app(app["id"], "beta", ["beta/web"])["id"]
    sandbox.clear_requests()
    return app


@pytest.fixture
def record(db: None, server: SandboxServer, app: dict[str, Any]) -> Iterator[Forge]:
    record = Forge.objects.create(
        kind="github",
        slug="gh-app",
        name="GitHub App",
        api_url=f"{server.url}/api/v3",
        token="",
        webhook_secret="w",
        app_id=app["id"],
        app_private_key=app["private_key"],
    )
    yield record
    registry._clients.clear()


def client(record: Forge) -> GitHubForge:
    forge = registry.forge_for(record)
    assert isinstance(forge, GitHubForge)
    return forge


def mints(sandbox: SandboxClient) -> list[dict[str, Any]]:
    return sandbox.requests(method="POST", path="/access_tokens")


def test_one_forge_row_serves_two_organisations(
    record: Forge, sandbox: SandboxClient, app: dict[str, Any]
) -> None:
    forge = client(record)
    assert forge.get_project("acme/api").path == "acme/api"
    assert forge.get_project("beta/web").path == "beta/web"
    for _ in range(3):
        forge.get_project("acme/api")
        forge.get_project("beta/web")
    # One lookup and one token per installation, whatever the number of calls.
    assert len(sandbox.requests(method="GET", path="/installation")) == 2
    assert [m["path"].split("/")[-2] for m in mints(sandbox)] == [
        str(app["acme"]),
        str(app["beta"]),
    ]
    rows = {row.installation_id: row for row in AppInstallation.objects.filter(forge=record)}
    assert set(rows) == {app["acme"], app["beta"]}
    assert rows[app["acme"]].token.startswith("ghs_")
    # Stored encrypted: the column does not hold the token.
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM chains_appinstallation")
        assert all(not raw.startswith("ghs_") for (raw,) in cursor.fetchall())


def test_tokens_are_shared_by_every_client_of_the_row(
    record: Forge, sandbox: SandboxClient
) -> None:
    client(record).get_project("acme/api")
    registry._clients.clear()  # another process: its own client, the same database
    client(record).get_project("acme/api")
    assert len(mints(sandbox)) == 1


def test_a_token_is_renewed_before_it_expires(record: Forge, sandbox: SandboxClient) -> None:
    forge = client(record)
    deadline = time.monotonic() + 3 * HOUR_IN_SECONDS
    while time.monotonic() < deadline:
        forge.get_project("acme/api")
        time.sleep(0.05)
    assert len(mints(sandbox)) >= 3  # three lifetimes, each renewed in time...
    refused = [r for r in sandbox.requests(path="/repos/acme/api") if r["status"] == 401]
    assert refused == []  # ...so GitHub never had to refuse one


def test_a_refused_token_is_dropped_and_minted_once_more(
    record: Forge, sandbox: SandboxClient, app: dict[str, Any]
) -> None:
    forge = client(record)
    forge.get_project("acme/api")
    row = AppInstallation.objects.get(forge=record, installation_id=app["acme"])
    row.token = "ghs_revoked000000000000000000000000000"
    row.save()
    assert forge.get_project("acme/api").path == "acme/api"
    row.refresh_from_db()
    assert row.token != "ghs_revoked000000000000000000000000000"
    assert len(mints(sandbox)) == 2


def test_a_repository_without_the_app_is_named(record: Forge) -> None:
    with pytest.raises(ForgeError) as exc:
        client(record).get_project("gamma/other")
    assert exc.value.status_code == 404
    assert "not installed on gamma/other" in exc.value.message


def test_the_app_names_itself_and_lists_its_installations(
    record: Forge, app: dict[str, Any]
) -> None:
    forge = client(record)
    assert forge.whoami() == "baton[bot]"
    listed = forge.installations()
    assert [(i.id, i.account, i.repository_selection) for i in listed] == [
        (app["acme"], "acme", "all"),
        (app["beta"], "beta", "selected"),
    ]
    accounts = dict(
        AppInstallation.objects.filter(forge=record).values_list("installation_id", "account")
    )
    assert accounts == {app["acme"]: "acme", app["beta"]: "beta"}


def test_an_app_forge_mirrors_with_check_runs(record: Forge, sandbox: SandboxClient) -> None:
    forge = client(record)
    sha = sandbox.github_repo("beta/web")["head_sha"]
    forge.set_commit_status(
        "beta/web", sha, context="baton", status=Status.SUCCESS, description="ok", target_url=""
    )
    created = sandbox.requests(method="POST", path="/repos/beta/web/check-runs")
    assert [r["status"] for r in created] == [201]


def test_a_wrong_private_key_says_so(record: Forge, sandbox: SandboxClient) -> None:
    other = sandbox.register_github_app("other")
    record.app_private_key = other["private_key"]
    record.save()
    with pytest.raises(ForgeError) as exc:
        client(record).get_project("acme/api")
    assert exc.value.status_code == 401
    assert "JSON web token" in exc.value.message
