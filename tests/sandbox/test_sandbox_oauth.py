"""The sandbox's OAuth 2 authorization-code flows (GitLab and GitHub), as strict as the forges."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, serve_in_thread

CALLBACK = "http://baton.example/accounts/cb/"
AUTHORIZE = {"gitlab": "/oauth/authorize", "github": "/login/oauth/authorize"}
TOKEN = {"gitlab": "/oauth/token", "github": "/login/oauth/access_token"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    found = serve_in_thread()
    yield found
    found.shutdown()


@pytest.fixture
def sandbox(server: SandboxServer) -> Iterator[SandboxClient]:
    client = SandboxClient(server.url)
    client.reset()
    client.set_group_member("acme/platform", "alice", 30)
    client.set_group_member("acme/guests", "alice", 10)
    client.set_team_member("acme", "release", "alice")
    yield client
    client.reset()


def authorize(
    sandbox: SandboxClient, forge: str, app: dict[str, Any], scope: str = "", **extra: str
) -> requests.Response:
    data = {
        "client_id": app["client_id"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "s1",
        "scope": scope or " ".join(app["scopes"]),
        "username": "alice",
        "decision": "authorize",
        **extra,
    }
    return requests.post(
        sandbox.base_url + AUTHORIZE[forge], data=data, allow_redirects=False, timeout=5
    )


def code_of(answer: requests.Response) -> str:
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(
    sandbox: SandboxClient, forge: str, app: dict[str, Any], code: str, **extra: str
) -> requests.Response:
    data = {
        "client_id": app["client_id"],
        "client_secret": app["secret"],
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": CALLBACK,
        **extra,
    }
    return requests.post(
        sandbox.base_url + TOKEN[forge],
        data=data,
        headers={"Accept": "application/json"},
        timeout=5,
    )


@pytest.mark.parametrize("forge", ["gitlab", "github"])
def test_a_code_is_good_once_for_its_client_and_redirect_uri(
    sandbox: SandboxClient, forge: str
) -> None:
    app = sandbox.register_oauth_app(forge, CALLBACK)
    other = sandbox.register_oauth_app(forge, CALLBACK)
    code = code_of(authorize(sandbox, forge, app))
    wrong_client = exchange(sandbox, forge, other, code)
    assert "access_token" not in wrong_client.json()
    code = code_of(authorize(sandbox, forge, app))
    assert (
        "access_token"
        not in exchange(sandbox, forge, app, code, redirect_uri=CALLBACK + "x").json()
    )
    code = code_of(authorize(sandbox, forge, app))
    assert "access_token" in exchange(sandbox, forge, app, code).json()
    again = exchange(sandbox, forge, app, code).json()
    assert again["error"] in ("invalid_grant", "bad_verification_code")


@pytest.mark.parametrize("forge", ["gitlab", "github"])
def test_a_wrong_secret_gets_no_token(sandbox: SandboxClient, forge: str) -> None:
    app = sandbox.register_oauth_app(forge, CALLBACK)
    code = code_of(authorize(sandbox, forge, app))
    answer = exchange(sandbox, forge, {**app, "secret": "wrong"}, code)
    assert answer.json()["error"] in ("invalid_client", "incorrect_client_credentials")


@pytest.mark.parametrize("forge", ["gitlab", "github"])
def test_an_unregistered_redirect_uri_is_an_error_page_never_a_redirect(
    sandbox: SandboxClient, forge: str
) -> None:
    app = sandbox.register_oauth_app(forge, CALLBACK)
    for method in ("GET", "POST"):
        answer = requests.request(
            method,
            sandbox.base_url + AUTHORIZE[forge],
            params={
                "client_id": app["client_id"],
                "redirect_uri": "https://evil.example/cb",
                "response_type": "code",
            },
            allow_redirects=False,
            timeout=5,
        )
        assert answer.status_code == 400 and "Location" not in answer.headers


def test_denying_redirects_with_access_denied_and_the_state(sandbox: SandboxClient) -> None:
    app = sandbox.register_oauth_app("gitlab", CALLBACK)
    answer = authorize(sandbox, "gitlab", app, decision="deny")
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["s1"]
    assert "code" not in query


def test_scopes_beyond_the_applications_are_refused(sandbox: SandboxClient) -> None:
    app = sandbox.register_oauth_app("gitlab", CALLBACK, scopes=["read_user"])
    answer = authorize(sandbox, "gitlab", app, scope="read_user api")
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_gitlab_user_and_groups_need_their_scopes(sandbox: SandboxClient) -> None:
    narrow = sandbox.register_oauth_app("gitlab", CALLBACK, scopes=["read_user"])
    token = exchange(sandbox, "gitlab", narrow, code_of(authorize(sandbox, "gitlab", narrow)))
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    me = requests.get(f"{sandbox.base_url}/api/v4/user", headers=bearer, timeout=5).json()
    assert me["username"] == "alice" and me["confirmed_at"]
    groups = requests.get(f"{sandbox.base_url}/api/v4/groups", headers=bearer, timeout=5)
    assert groups.status_code == 403 and groups.json()["error"] == "insufficient_scope"

    app = sandbox.register_oauth_app("gitlab", CALLBACK)
    token = exchange(sandbox, "gitlab", app, code_of(authorize(sandbox, "gitlab", app)))
    access = token.json()["access_token"]
    assert token.json()["token_type"] == "Bearer" and token.json()["expires_in"] == 7200
    as_param = requests.get(
        f"{sandbox.base_url}/api/v4/user", params={"access_token": access}, timeout=5
    )
    assert as_param.json()["username"] == "alice"
    listed = requests.get(
        f"{sandbox.base_url}/api/v4/groups",
        params={"min_access_level": 30},
        headers={"Authorization": f"Bearer {access}"},
        timeout=5,
    ).json()
    assert [g["full_path"] for g in listed] == ["acme/platform"]
    unknown = requests.get(
        f"{sandbox.base_url}/api/v4/user", headers={"Authorization": "Bearer gloas-x"}, timeout=5
    )
    assert unknown.status_code == 401


def test_github_token_answer_is_form_encoded_unless_json_is_accepted(
    sandbox: SandboxClient,
) -> None:
    app = sandbox.register_oauth_app("github", CALLBACK)
    code = code_of(authorize(sandbox, "github", app))
    answer = requests.post(
        sandbox.base_url + TOKEN["github"],
        data={"client_id": app["client_id"], "client_secret": app["secret"], "code": code},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert re.match(r"access_token=gho_\w+&token_type=bearer&scope=", answer.text)


def test_github_emails_and_teams_need_their_scopes(sandbox: SandboxClient) -> None:
    narrow = sandbox.register_oauth_app("github", CALLBACK, scopes=["read:user"])
    token = exchange(sandbox, "github", narrow, code_of(authorize(sandbox, "github", narrow)))
    auth = {"Authorization": f"token {token.json()['access_token']}"}
    api = f"{sandbox.base_url}/api/v3"
    assert requests.get(f"{api}/user", headers=auth, timeout=5).json()["login"] == "alice"
    assert requests.get(f"{api}/user/emails", headers=auth, timeout=5).status_code == 404
    assert requests.get(f"{api}/user/teams", headers=auth, timeout=5).status_code == 403

    app = sandbox.register_oauth_app("github", CALLBACK)
    token = exchange(sandbox, "github", app, code_of(authorize(sandbox, "github", app)))
    auth = {"Authorization": f"token {token.json()['access_token']}"}
    emails = requests.get(f"{api}/user/emails", headers=auth, timeout=5).json()
    assert emails == [
        {"email": "alice@example.com", "primary": True, "verified": True, "visibility": "private"}
    ]
    teams = requests.get(f"{api}/user/teams", headers=auth, timeout=5).json()
    assert [(t["organization"]["login"], t["slug"]) for t in teams] == [("acme", "release")]
