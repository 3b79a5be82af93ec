"""GitHub Deployments in the sandbox through the real PyGithub client: create (payload, defaults,
unknown ref, required contexts), list filters, get, delete, deployment statuses (environment,
auto-inactive), runs of ``on: deployment`` workflows with a rendered ``run-name`` and the
deployment statuses they post, and the ``deployment`` / ``deployment_status`` webhooks."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from github import Github, GithubException

from sandbox.client import SandboxClient, wait_until
from sandbox.server import SandboxServer

ON_DEPLOYMENT = """\
name: Deploy
run-name: "Deploy ${{ github.event.deployment.payload.marker }} to \
${{ github.event.deployment.environment }} (${{ github.event_name }} ${{ github.ref_name }})"
on: deployment
jobs: {}
"""
ON_DEPLOYMENT_LIST = "name: Notify\non: [deployment]\njobs: {}\n"
ON_PUSH = "name: CI\non: [push]\njobs: {}\n"


@pytest.fixture
def repo(control: SandboxClient) -> dict[str, Any]:
    return control.create_github_repo(
        "acme/api",
        files={
            ".github/workflows/deploy.yml": ON_DEPLOYMENT,
            ".github/workflows/ci.yml": ON_PUSH,
            "README.md": "hi\n",
        },
    )


@pytest.fixture
def plain(control: SandboxClient) -> dict[str, Any]:
    """A repository without ``on: deployment`` workflows: only the test posts statuses."""
    return control.create_github_repo("acme/api", files={".github/workflows/ci.yml": ON_PUSH})


def api(forge: SandboxServer, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        f"{forge.url}/api/v3/repos/acme/api{path}",
        json=body,
        headers={"Authorization": "token x"},
    )


def test_create_get_and_list_deployments(
    forge: SandboxServer, gh: Github, control: SandboxClient, repo: dict[str, Any]
) -> None:
    r = gh.get_repo("acme/api")
    d = r.create_deployment(
        "main",
        environment="preview-7",
        payload={"marker": "m-1", "n": 2},
        required_contexts=[],
        auto_merge=False,
        description="Preview 7",
    )
    assert (d.sha, d.ref, d.task, d.environment, d.original_environment) == (
        repo["head_sha"],
        "main",
        "deploy",
        "preview-7",
        "preview-7",
    )
    assert d.payload == {"marker": "m-1", "n": 2} and d.description == "Preview 7"
    assert (d.creator.login, d.production_environment, d.transient_environment) == (
        "baton-bot",
        False,
        False,
    )
    assert d.url == f"{forge.url}/api/v3/repos/acme/api/deployments/{d.id}"
    assert d.statuses_url == d.url + "/statuses"
    assert d.repository_url == f"{forge.url}/api/v3/repos/acme/api"

    control.github_commit("acme/api", {"x": "1"}, branch="release")
    control.github_tag("acme/api", "v1", ref="release")
    prod = r.create_deployment("v1", task="deploy:migrations", required_contexts=[])
    assert (prod.environment, prod.production_environment, prod.payload) == ("production", True, {})
    text = api(
        forge,
        "POST",
        "/deployments",
        {"ref": repo["head_sha"], "environment": "qa", "payload": '{"marker": "s"}'},
    )
    assert text.status_code == 201 and text.json()["payload"] == {"marker": "s"}
    assert text.json()["ref"] == repo["head_sha"] and text.json()["description"] == ""

    assert [x.id for x in r.get_deployments()] == [d.id + 2, d.id + 1, d.id]
    assert [x.id for x in r.get_deployments(environment="preview-7")] == [d.id]
    assert [x.id for x in r.get_deployments(ref="v1")] == [prod.id]
    assert [x.id for x in r.get_deployments(task="deploy:migrations")] == [prod.id]
    assert [x.id for x in r.get_deployments(sha=repo["head_sha"])] == [d.id + 2, d.id]
    page = api(forge, "GET", "/deployments?per_page=2")
    assert len(page.json()) == 2 and 'rel="next"' in page.headers["Link"]
    got = r.get_deployment(d.id)
    assert (got.payload, got.environment, got.sha) == (d.payload, "preview-7", d.sha)
    with pytest.raises(GithubException) as missing:
        r.get_deployment(999)
    assert missing.value.status == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"ref": "no-such-branch"}, 422, "No ref found for: no-such-branch"),
        ({}, 422, '"ref" wasn\'t supplied.'),
        ({"ref": "main", "payload": [1]}, 422, "is not an object or a string"),
        ({"ref": "main", "required_contexts": "ci"}, 422, "is not an array of strings"),
    ],
)
def test_create_validation(
    forge: SandboxServer, repo: dict[str, Any], body: dict[str, Any], status: int, message: str
) -> None:
    r = api(forge, "POST", "/deployments", body)
    assert r.status_code == status and message in r.json()["message"]


def test_required_contexts_are_verified(
    forge: SandboxServer, gh: Github, plain: dict[str, Any]
) -> None:
    r = gh.get_repo("acme/api")
    r.get_commit(plain["head_sha"]).create_status("failure", context="ci/tests")
    r.get_commit(plain["head_sha"]).create_status("success", context="ci/lint")
    with pytest.raises(GithubException) as exc:
        r.create_deployment("main")  # every context of the commit must pass
    assert exc.value.status == 409
    assert exc.value.data["message"] == "Conflict: Commit status checks failed for main."
    assert exc.value.data["errors"][0]["contexts"] == [{"context": "ci/tests", "state": "failure"}]
    assert r.create_deployment("main", required_contexts=["ci/lint"]).id
    with pytest.raises(GithubException) as exc:
        r.create_deployment("main", required_contexts=["ci/lint", "ci/build"])
    assert exc.value.data["errors"][0]["contexts"] == [{"context": "ci/build", "state": "missing"}]
    assert r.create_deployment("main", required_contexts=[]).id
    assert r.get_deployments().totalCount == 2


def test_deployment_statuses(forge: SandboxServer, gh: Github, plain: dict[str, Any]) -> None:
    r = gh.get_repo("acme/api")
    first = r.create_deployment("main", environment="staging", required_contexts=[])
    s1 = first.create_status("in_progress", description="rolling out")
    s2 = first.create_status("success", target_url="http://ci/1", environment_url="http://stg/")
    assert (s2.state, s2.target_url, s2.log_url, s2.environment_url, s2.environment) == (
        "success",
        "http://ci/1",
        "http://ci/1",
        "http://stg/",
        "staging",
    )
    assert s2.deployment_url == first.url and s2.creator.login == "baton-bot"
    statuses = list(first.get_statuses())
    assert [s.id for s in statuses] == [s2.id, s1.id]  # newest first
    assert statuses[0].repository_url == first.repository_url
    assert first.get_status(s1.id).description == "rolling out"

    # a later successful deployment of the same (non-production) environment deactivates it
    second = r.create_deployment("main", environment="staging", required_contexts=[])
    second.create_status("success")
    assert [s.state for s in first.get_statuses()] == ["inactive", "success", "in_progress"]
    third = r.create_deployment("main", environment="staging", required_contexts=[])
    third.create_status("success", auto_inactive=False)
    assert next(iter(second.get_statuses())).state == "success"

    # a status may move the deployment to another environment; original_environment stays
    moved = third.create_status("in_progress", environment="staging-2")
    assert moved.environment == "staging-2"
    assert next(iter(third.get_statuses())).environment == "staging-2"
    got = r.get_deployment(third.id)
    assert (got.environment, got.original_environment) == ("staging-2", "staging")

    with pytest.raises(GithubException) as exc:
        third.create_status("done")
    assert exc.value.status == 422 and exc.value.data["errors"][0]["field"] == "state"
    with pytest.raises(GithubException) as exc:
        third.create_status("success", description="x" * 141)
    assert exc.value.status == 422
    with pytest.raises(GithubException) as exc:
        first.get_status(999_999)
    assert exc.value.status == 404


def test_delete_only_inactive_or_lone_deployments(
    forge: SandboxServer, gh: Github, plain: dict[str, Any]
) -> None:
    r = gh.get_repo("acme/api")
    a = r.create_deployment("main", environment="staging", required_contexts=[])
    b = r.create_deployment("main", environment="staging", required_contexts=[])
    refused = api(forge, "DELETE", f"/deployments/{a.id}")
    assert refused.status_code == 422 and "cannot delete an active" in refused.json()["message"]
    a.create_status("inactive")
    assert api(forge, "DELETE", f"/deployments/{a.id}").status_code == 204
    assert api(forge, "DELETE", f"/deployments/{b.id}").status_code == 204  # now alone
    assert r.get_deployments().totalCount == 0


def test_on_deployment_workflows_run_and_post_statuses(
    gh: Github, control: SandboxClient, repo: dict[str, Any]
) -> None:
    control.set_run_script("acme/api", queue=["success", "failure", "cancelled"])
    r = gh.get_repo("acme/api")
    d = r.create_deployment(
        "main",
        environment="preview",
        payload={"marker": "baton-42"},
        required_contexts=[],
        auto_merge=False,
    )
    runs = list(r.get_workflow_runs(event="deployment"))
    assert [(x.display_title, x.event, x.head_branch, x.head_sha, x.path) for x in runs] == [
        (
            "Deploy baton-42 to preview (deployment main)",
            "deployment",
            "main",
            d.sha,
            ".github/workflows/deploy.yml",
        )
    ]
    assert r.get_workflow_runs(event="push").totalCount == 0
    listed = control.workflow_runs("acme/api")
    assert [(x["event"], x["deployment_id"], x["deployment_payload"]) for x in listed] == [
        ("deployment", d.id, {"marker": "baton-42"})
    ]
    control.wait_for_run("acme/api", runs[0].id)
    statuses = list(d.get_statuses())
    assert [s.state for s in statuses] == ["success", "in_progress", "queued"]
    assert {s.creator.login for s in statuses} == {"github-actions[bot]"}
    assert statuses[0].log_url == runs[0].html_url
    assert statuses[0].environment == "preview"

    # the workflow files are read at the deployed commit; `on: [deployment]` counts too
    sha = control.github_commit(
        "acme/api", {".github/workflows/notify.yml": ON_DEPLOYMENT_LIST}, branch="feature"
    )
    d2 = r.create_deployment(
        sha, environment="qa", payload={"marker": "by-sha"}, required_contexts=[]
    )
    by_sha = {
        x["path"]: x for x in control.workflow_runs("acme/api") if x["deployment_id"] == d2.id
    }
    assert set(by_sha) == {".github/workflows/deploy.yml", ".github/workflows/notify.yml"}
    assert by_sha[".github/workflows/deploy.yml"]["display_title"] == (
        "Deploy by-sha to qa (deployment " + sha + ")"
    )
    assert by_sha[".github/workflows/notify.yml"]["display_title"] == "Notify"
    done = {control.wait_for_run("acme/api", x["id"])["conclusion"] for x in by_sha.values()}
    assert done == {"failure", "cancelled"}
    finals = [
        s["state"]
        for s in control.github_deployments("acme/api")[1]["statuses"]
        if s["state"] not in ("queued", "in_progress")
    ]
    assert sorted(finals) == ["error", "failure"]
    assert control.github_deployments("acme/api")[1]["run_ids"] == sorted(
        x["id"] for x in by_sha.values()
    )


def test_deployment_webhooks(
    control: SandboxClient, gh: Github, receiver: Any, repo: dict[str, Any]
) -> None:
    control.add_github_hook(
        "acme/api",
        receiver.url,
        secret="s",
        events=["deployment", "deployment_status", "workflow_run"],
    )
    r = gh.get_repo("acme/api")
    d = r.create_deployment(
        "main", environment="preview", payload={"marker": "w-1"}, required_contexts=[]
    )
    run_id = control.workflow_runs("acme/api")[0]["id"]
    control.wait_for_run("acme/api", run_id)
    d.create_status("inactive", description="torn down")

    def delivered() -> list[dict[str, Any]]:
        return [h for h in receiver.github_events() if h["github_event"] != "ping"]

    hooks = wait_until(lambda: len(delivered()) >= 8 and delivered(), 5, "8 deployment hooks")
    assert [(h["github_event"], h["payload"].get("action")) for h in hooks] == [
        ("deployment", "created"),
        ("workflow_run", "requested"),
        ("deployment_status", "created"),
        ("workflow_run", "in_progress"),
        ("deployment_status", "created"),
        ("workflow_run", "completed"),
        ("deployment_status", "created"),
        ("deployment_status", "created"),
    ]
    created = hooks[0]["payload"]
    assert created["deployment"]["payload"] == {"marker": "w-1"}
    assert created["deployment"]["id"] == d.id and created["sender"]["login"] == "baton-bot"
    assert created["workflow"] is None and created["workflow_run"] is None
    by_run = [h["payload"] for h in hooks if h["github_event"] == "deployment_status"]
    assert [p["deployment_status"]["state"] for p in by_run] == [
        "queued",
        "in_progress",
        "success",
        "inactive",
    ]
    assert {p["workflow_run"]["id"] for p in by_run[:3]} == {run_id}
    assert by_run[2]["workflow_run"]["conclusion"] == "success"
    assert by_run[2]["workflow"]["path"] == ".github/workflows/deploy.yml"
    assert by_run[2]["sender"]["login"] == "github-actions[bot]"
    assert "workflow_run" not in by_run[3] and by_run[3]["sender"]["login"] == "baton-bot"
    assert by_run[3]["deployment"]["id"] == d.id
    assert hooks[1]["payload"]["workflow_run"]["event"] == "deployment"
