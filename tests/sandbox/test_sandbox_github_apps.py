"""GitHub Apps in the sandbox: JWTs verified against the registered public key, installations
found per repository, installation tokens that reach only their installation and expire after an
hour of sandbox time, answered as GitHub answers (401 Bad credentials)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from github import Auth, Github, GithubException, GithubIntegration

from sandbox.client import SandboxClient
from sandbox.github.apps import new_key_pair
from sandbox.server import SandboxServer, serve_in_thread


def integration(forge: SandboxServer, app_id: int, private_key: str) -> GithubIntegration:
    return GithubIntegration(
        auth=Auth.AppAuth(app_id, private_key), base_url=f"{forge.url}/api/v3", retry=None
    )


@pytest.fixture
def two_orgs(control: SandboxClient) -> dict[str, Any]:
    """App "baton" installed on all of acme's repositories and on one of beta's."""
    for name in ("acme/api", "beta/web", "beta/secret"):
        control.create_github_repo(name, files={"README.md": "hi\n"})
    app = control.register_github_app("baton")
    acme = control.install_github_app(app["id"], "acme")
    beta = control.install_github_app(app["id"], "beta", ["beta/web"])
    return {"app": app, "acme": acme, "beta": beta}


def test_an_app_lists_its_installations_and_finds_one_per_repository(
    forge: SandboxServer, two_orgs: dict[str, Any]
) -> None:
    app = two_orgs["app"]
    assert app["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    gi = integration(forge, app["id"], app["private_key"])
    assert gi.get_app().slug == "baton"
    listed = {i.id: i.account.login for i in gi.get_installations()}
    assert listed == {two_orgs["acme"]["id"]: "acme", two_orgs["beta"]["id"]: "beta"}
    assert gi.get_repo_installation("acme", "api").id == two_orgs["acme"]["id"]
    assert gi.get_repo_installation("beta", "web").id == two_orgs["beta"]["id"]
    with pytest.raises(GithubException) as exc:
        gi.get_repo_installation("beta", "secret")  # not among the selected repositories
    assert exc.value.status == 404


def test_an_installation_token_reaches_only_its_installation(
    forge: SandboxServer,
    control: SandboxClient,
    two_orgs: dict[str, Any],
    make_github: Callable[..., Github],
) -> None:
    app = two_orgs["app"]
    gi = integration(forge, app["id"], app["private_key"])
    minted = gi.get_access_token(two_orgs["beta"]["id"])
    assert minted.token.startswith("ghs_")
    gh = make_github(minted.token)
    assert gh.get_repo("beta/web").full_name == "beta/web"
    headers = {"Authorization": f"token {minted.token}"}
    for other in ("beta/secret", "acme/api"):
        r = requests.get(f"{forge.url}/api/v3/repos/{other}", headers=headers, timeout=5)
        assert r.status_code == 404, other
        r = requests.get(
            f"{forge.url}/api/v3/repos/{other}", headers={"Authorization": "token x"}, timeout=5
        )
        assert r.status_code == 200, other  # the repository exists
    # A minted token is an App's: it may create check runs, named after the App.
    head = control.github_repo("beta/web")["head_sha"]
    run = gh.get_repo("beta/web").create_check_run("baton", head, status="in_progress")
    assert run.app.slug == "baton"


def test_a_jwt_signed_by_another_key_is_refused(
    forge: SandboxServer, control: SandboxClient, two_orgs: dict[str, Any]
) -> None:
    stranger, _ = new_key_pair()
    gi = integration(forge, two_orgs["app"]["id"], stranger)
    with pytest.raises(GithubException) as exc:
        gi.get_access_token(two_orgs["acme"]["id"])
    assert exc.value.status == 401
    assert exc.value.data["message"] == "A JSON web token could not be decoded"


def test_jwt_claims_are_checked(forge: SandboxServer, two_orgs: dict[str, Any]) -> None:
    app = two_orgs["app"]
    url = f"{forge.url}/api/v3/app"

    def status(**claims: Any) -> tuple[int, str]:
        now = int(time.time())
        token = jwt.encode(
            {"iat": now - 60, "exp": now + 300, "iss": str(app["id"]), **claims},
            app["private_key"],
            algorithm="RS256",
        )
        r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        return r.status_code, r.json()["message"] if r.status_code != 200 else ""

    assert status() == (200, "")
    assert status(exp=int(time.time()) - 120)[0] == 401  # expired
    assert "too far in the future" in status(exp=int(time.time()) + 3600)[1]
    assert status(iss="999")[0] == 401  # no such App
    assert status(iss="Iv1.abc") == (401, "'Issuer' claim ('iss') must be an Integer")
    # A personal token does not open the App's endpoints.
    r = requests.get(url, headers={"Authorization": "token ghp_x"}, timeout=5)
    assert r.status_code == 401


def test_a_registered_public_key_verifies_the_apps_jwts(
    forge: SandboxServer, control: SandboxClient
) -> None:
    private, public = new_key_pair()
    app = control.register_github_app("keyed", app_id=4242, public_key=public)
    assert "private_key" not in app and app["id"] == 4242
    assert integration(forge, 4242, private).get_app().slug == "keyed"


def test_unknown_installation_token_is_bad_credentials(forge: SandboxServer) -> None:
    r = requests.get(
        f"{forge.url}/api/v3/repos/acme/api",
        headers={"Authorization": "token ghs_nothingthesandboxeverminted000000"},
        timeout=5,
    )
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.fixture
def fast_forge() -> Iterator[SandboxServer]:
    server = serve_in_thread(port=0, time_scale=3600)  # an hour of sandbox time: 1 s
    yield server
    server.shutdown()


def test_installation_tokens_expire_after_an_hour_of_sandbox_time(
    fast_forge: SandboxServer,
) -> None:
    control = SandboxClient(fast_forge.url)
    control.create_github_repo("acme/api", files={"README.md": "hi\n"})
    app = control.register_github_app("baton")
    inst = control.install_github_app(app["id"], "acme")
    gi = integration(fast_forge, app["id"], app["private_key"])
    minted = gi.get_access_token(inst["id"])
    assert minted.expires_at <= datetime.now(UTC) + timedelta(seconds=2)
    url = f"{fast_forge.url}/api/v3/repos/acme/api"
    headers = {"Authorization": f"token {minted.token}"}
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    time.sleep(1.2)
    r = requests.get(url, headers=headers, timeout=5)
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    # A new token works again.
    fresh = gi.get_access_token(inst["id"])
    assert (
        requests.get(url, headers={"Authorization": f"token {fresh.token}"}, timeout=5).status_code
        == 200
    )


def test_apps_installations_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "var" / "sandbox-state.pickle")
    first = serve_in_thread(state_file=path)
    try:
        control = SandboxClient(first.url)
        control.create_github_repo("acme/api", files={"README.md": "hi\n"})
        app = control.register_github_app("baton")
        inst = control.install_github_app(app["id"], "acme")
        token = integration(first, app["id"], app["private_key"]).get_access_token(inst["id"])
    finally:
        first.shutdown()
    second = serve_in_thread(state_file=path)
    try:
        url = f"{second.url}/api/v3/repos/acme/api"
        r = requests.get(url, headers={"Authorization": f"token {token.token}"}, timeout=5)
        assert r.status_code == 200  # the token still works, an hour is not over
        gi = integration(second, app["id"], app["private_key"])
        assert [i.id for i in gi.get_installations()] == [inst["id"]]
    finally:
        second.shutdown()
