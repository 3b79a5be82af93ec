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
