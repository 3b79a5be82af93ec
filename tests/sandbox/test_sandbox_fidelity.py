"""The sandbox behaves like the real forges where Baton would notice (docs/sandbox.md)."""

from __future__ import annotations

import gitlab
import pytest
import requests

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer


@pytest.fixture
def project(control: SandboxClient) -> dict:
    return control.create_project("acme/app", files={"a.txt": "a\n"})


def _post_status(forge: SandboxServer, project: dict, state: str, name: str = "baton/x",
                 **extra: str) -> requests.Response:
    return requests.post(
        f"{forge.url}/api/v4/projects/{project['id']}/statuses/{project['head_sha']}",
        json={"state": state, "name": name, **extra}, headers={"PRIVATE-TOKEN": "x"}, timeout=5)


# -- commit statuses are a state machine (GitLab) -----------------------------------------------


def test_repeating_pending_is_refused_like_gitlab(forge: SandboxServer, project: dict) -> None:
    assert _post_status(forge, project, "pending").status_code == 201
    again = _post_status(forge, project, "pending")
    assert again.status_code == 400
    assert again.json()["message"].startswith("Cannot transition status via :enqueue from :pending")


def test_repeating_running_is_refused_and_pending_after_running_too(
    forge: SandboxServer, project: dict
) -> None:
    assert _post_status(forge, project, "running").status_code == 201
    again = _post_status(forge, project, "running")
    assert again.status_code == 400
    assert again.json()["message"].startswith("Cannot transition status via :run from :running")
    back = _post_status(forge, project, "pending")
    assert back.status_code == 400
    assert back.json()["message"].startswith("Cannot transition status via :enqueue from :running")


def test_pending_then_running_then_success_update_one_record(
    forge: SandboxServer, project: dict
) -> None:
    ids = {_post_status(forge, project, s).json()["id"] for s in ("pending", "running", "success")}
    assert len(ids) == 1


def test_a_state_after_a_finished_one_starts_a_new_record(
    gl: gitlab.Gitlab, forge: SandboxServer, project: dict
) -> None:
    first = _post_status(forge, project, "success").json()
    second = _post_status(forge, project, "pending")
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]
    third = _post_status(forge, project, "failed")
    assert third.json()["id"] == second.json()["id"]
    commit = gl.projects.get(project["id"], lazy=True).commits.get(project["head_sha"], lazy=True)
    assert [s.status for s in commit.statuses.list()] == ["failed"]  # the latest per name
    every = requests.get(
        f"{forge.url}/api/v4/projects/{project['id']}/repository/commits/{project['head_sha']}"
        "/statuses?all=true", headers={"PRIVATE-TOKEN": "x"}, timeout=5).json()
    assert [s["status"] for s in every] == ["failed", "success"]  # newest first


def test_status_names_and_refs_are_separate_machines(forge: SandboxServer, project: dict) -> None:
    assert _post_status(forge, project, "pending", name="a").status_code == 201
    assert _post_status(forge, project, "pending", name="b").status_code == 201
    assert _post_status(forge, project, "pending", name="a", ref="other").status_code == 201


def test_an_unknown_state_is_a_parameter_error(forge: SandboxServer, project: dict) -> None:
    answer = _post_status(forge, project, "bogus")
    assert answer.status_code == 400
    assert answer.json() == {"error": "state does not have a valid value"}


# -- pipelines need CI configuration (GitLab) ---------------------------------------------------


def test_a_project_without_ci_config_gets_no_pipeline(
    gl: gitlab.Gitlab, control: SandboxClient
) -> None:
    bare = control.create_project("acme/bare", files={"a.txt": "a\n"}, ci_config=False)
    with pytest.raises(gitlab.GitlabCreateError) as info:
        gl.projects.get(bare["id"], lazy=True).pipelines.create({"ref": "main"})
    assert info.value.response_code == 400
    assert info.value.error_message == {"base": ["Missing CI config file"]}


def test_sandbox_projects_get_a_ci_config_by_default(gl: gitlab.Gitlab, project: dict) -> None:
    p = gl.projects.get(project["id"], lazy=True)
    assert p.files.raw(".gitlab-ci.yml", ref="main")
    assert p.pipelines.create({"ref": "main"}).status == "created"


# -- users --------------------------------------------------------------------------------------


def test_gitlab_public_email_is_empty_unless_set(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    alice = control.set_user("alice")
    assert gl.users.get(alice["id"]).public_email == ""
    control.set_user("alice", public_email="alice@corp.test")
    assert gl.users.get(alice["id"]).public_email == "alice@corp.test"


def test_github_named_user_is_public_shape_with_email_only_when_public(
    forge: SandboxServer, control: SandboxClient
) -> None:
    control.set_user("bob")
    url = f"{forge.url}/api/v3/users/bob"
    auth = {"Authorization": "token x"}
    data = requests.get(url, headers=auth, timeout=5).json()
    assert data["login"] == "bob" and data["email"] is None
    assert {"name", "bio", "public_repos", "followers", "created_at"} <= data.keys()
    assert "private_gists" not in data and "two_factor_authentication" not in data
    control.set_user("bob", public_email="bob@corp.test")
    assert requests.get(url, headers=auth, timeout=5).json()["email"] == "bob@corp.test"


# -- HTTP conventions (GitHub) ------------------------------------------------------------------


def test_github_http_conventions(forge: SandboxServer, control: SandboxClient) -> None:
    control.set_user("carol")
    auth = {"Authorization": "token x"}
    ok = requests.get(f"{forge.url}/api/v3/users/carol", headers=auth, timeout=5)
    assert ok.headers["Content-Type"] == "application/json; charset=utf-8"
    slash = requests.get(f"{forge.url}/api/v3/users/carol/", headers=auth, timeout=5)
    assert slash.status_code == 404 and slash.json()["message"] == "Not Found"
    wrong_method = requests.delete(f"{forge.url}/api/v3/users/carol", headers=auth, timeout=5)
    assert wrong_method.status_code == 404 and wrong_method.json()["message"] == "Not Found"
