"""GitHub Actions in the sandbox: workflows, workflow and repository dispatch (with and without
``return_run_details``, and the refusing mode), run lifecycles on the script, filters, rerun and
cancel — through the real PyGithub client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from github import Github, GithubException

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

PREVIEW = """\
name: Preview
run-name: "Preview ${{ inputs.marker }} on ${{ github.ref_name }}"
on:
  workflow_dispatch:
    inputs:
      marker:
        description: correlation marker shown in the run name
        required: true
      env:
        type: choice
        options: [staging, prod]
        default: staging
"""
ON_DISPATCH = """\
name: Baton downstream
run-name: "Baton ${{ github.event.client_payload.marker }}"
on:
  repository_dispatch:
    types: [baton]
"""
ON_PUSH = "name: CI\non: [push]\njobs: {}\n"


@pytest.fixture
def repo(control: SandboxClient) -> dict:
    return control.create_github_repo(
        "acme/api",
        files={
            ".github/workflows/preview.yml": PREVIEW,
            ".github/workflows/downstream.yaml": ON_DISPATCH,
            ".github/workflows/ci.yml": ON_PUSH,
            "README.md": "hi\n",
        },
    )


def test_workflows_list_and_get_by_file_name_or_id(gh: Github, repo: dict) -> None:
    r = gh.get_repo("acme/api")
    flows = {w.path: w for w in r.get_workflows()}
    assert set(flows) == {
        ".github/workflows/preview.yml",
        ".github/workflows/downstream.yaml",
        ".github/workflows/ci.yml",
    }
    preview = r.get_workflow("preview.yml")
    assert (preview.name, preview.state) == ("Preview", "active")
    assert r.get_workflow(preview.id).path == preview.path
    assert r.get_workflow_runs().totalCount == 0


def test_dispatch_with_run_details_and_run_name(
    gh: Github, control: SandboxClient, repo: dict
) -> None:
    control.set_run_script("acme/api", "success", pending=4, running=4)
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    partial = wf.create_dispatch(
        "main", {"marker": "baton-42"}, throw=True, return_run_details=True
    )
    run = gh.get_repo("acme/api").get_workflow_run(partial.id)
    assert run.display_title == "Preview baton-42 on main"
    assert (run.name, run.event, run.head_branch) == ("Preview", "workflow_dispatch", "main")
    assert run.head_sha == repo["head_sha"] and run.status == "queued"
    assert run.html_url == partial.html_url and run.url == partial.url
    done = control.wait_for_run("acme/api", run.id)
    assert done["conclusion"] == "success" and done["inputs"] == {
        "marker": "baton-42",
        "env": "staging",
    }
    assert run.update() is True and run.conclusion == "success"


def test_dispatch_without_run_details_is_204_and_found_by_run_name(
    forge: SandboxServer, gh: Github, control: SandboxClient, repo: dict
) -> None:
    control.github_settings(return_run_details=False)  # an older GitHub Enterprise Server
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    with pytest.raises(GithubException) as exc:
        wf.create_dispatch("main", {"marker": "m-1"}, throw=True, return_run_details=True)
    assert exc.value.status == 422 and "return_run_details" in exc.value.data["message"]
    assert wf.create_dispatch("main", {"marker": "m-7", "env": "prod"}) is True
    log = control.requests(method="POST", path="/dispatches")
    assert [r["status"] for r in log] == [422, 204]
    runs = wf.get_runs(event="workflow_dispatch", branch="main")
    assert [r.display_title for r in runs] == ["Preview m-7 on main"]
    control.github_settings(return_run_details=True)
    r = requests.post(
        f"{forge.url}/api/v3/repos/acme/api/actions/workflows/preview.yml/dispatches",
        json={"ref": "main", "inputs": {"marker": "x"}, "return_run_details": True},
        headers={"Authorization": "token x"},
    )
    assert r.status_code == 200 and set(r.json()) == {"workflow_run_id", "run_url", "html_url"}


@pytest.mark.parametrize(
    ("inputs", "ref", "message"),
    [
        ({"marker": "m", "nope": "1"}, "main", 'Unexpected inputs provided: ["nope"]'),
        ({}, "main", "Required input 'marker' not provided"),
        ({f"k{i}": "v" for i in range(26)}, "main", "No more than 25 properties"),
        ({"marker": "m"}, "no-such-branch", "No ref found for: no-such-branch"),
        ({"marker": "m", "env": "dev"}, "main", "not in the list of allowed values"),
    ],
)
def test_dispatch_validation(gh: Github, repo: dict, inputs: dict, ref: str, message: str) -> None:
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    with pytest.raises(GithubException) as exc:
        wf.create_dispatch(ref, inputs, throw=True)
    assert exc.value.status == 422 and message in exc.value.data["message"]


def test_dispatch_needs_the_trigger(gh: Github, repo: dict) -> None:
    ci = gh.get_repo("acme/api").get_workflow("ci.yml")
    with pytest.raises(GithubException) as exc:
        ci.create_dispatch("main", throw=True)
    assert exc.value.data["message"] == "Workflow does not have 'workflow_dispatch' trigger"
    assert ci.create_dispatch("main") is False


def test_repository_dispatch_starts_matching_workflows(
    gh: Github, control: SandboxClient, repo: dict
) -> None:
    r = gh.get_repo("acme/api")
    assert r.create_repository_dispatch("other", {"marker": "no"}) is True
    assert r.get_workflow_runs().totalCount == 0
    assert r.create_repository_dispatch("baton", {"marker": "b-9", "run": 9}) is True
    runs = list(r.get_workflow_runs(event="repository_dispatch"))
    assert [(x.display_title, x.head_branch, x.path) for x in runs] == [
        ("Baton b-9", "main", ".github/workflows/downstream.yaml")
    ]
    assert r.create_repository_dispatch("baton", {f"k{i}": i for i in range(11)}) is False
    assert r.create_repository_dispatch("x" * 101) is False


def test_runs_reach_scripted_outcomes_and_filters(
    gh: Github, control: SandboxClient, repo: dict
) -> None:
    control.set_run_script("acme/api", queue=["failure", "cancelled"], running=0.2)
    control.github_commit("acme/api", {"x": "1"}, branch="release")
    control.set_run_script("acme/api", "timed_out", ref="release", running=0.2)
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    for ref, marker in [("main", "a"), ("main", "b"), ("release", "c"), ("main", "d")]:
        wf.create_dispatch(ref, {"marker": marker})
    runs = {r["display_title"].split()[1]: r for r in control.workflow_runs("acme/api")}
    outcomes = {m: control.wait_for_run("acme/api", r["id"])["conclusion"] for m, r in runs.items()}
    assert outcomes == {"a": "failure", "b": "cancelled", "c": "timed_out", "d": "success"}
    r = gh.get_repo("acme/api")
    assert r.get_workflow_runs(status="failure").totalCount == 1
    assert r.get_workflow_runs(status="completed").totalCount == 4
    assert r.get_workflow_runs(branch="release").totalCount == 1  # type: ignore[arg-type]
    assert r.get_workflow_runs(head_sha=repo["head_sha"]).totalCount == 3
    today = datetime.now(UTC).date()
    assert r.get_workflow_runs(created=f">={today.isoformat()}").totalCount == 4
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert r.get_workflow_runs(created=f"{tomorrow}..*").totalCount == 0
    assert wf.get_runs(status="success").totalCount == 1
    assert [x.run_number for x in r.get_workflow_runs()] == [4, 3, 2, 1]


def test_rerun_rerun_failed_and_cancel(gh: Github, control: SandboxClient, repo: dict) -> None:
    control.set_run_script("acme/api", queue=["failure", "success"], running=4)
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    run_id = wf.create_dispatch("main", {"marker": "r"}, return_run_details=True).id
    run = gh.get_repo("acme/api").get_workflow_run(run_id)
    assert run.rerun() is False  # still running: 403
    assert control.wait_for_run("acme/api", run_id)["conclusion"] == "failure"
    assert run.rerun_failed_jobs() is True
    done = control.wait_for_run("acme/api", run_id)
    assert (done["run_attempt"], done["conclusion"]) == (2, "success")
    assert done["previous_attempt_url"].endswith(f"/runs/{run_id}/attempts/1")
    assert run.rerun_failed_jobs() is False  # nothing failed
    assert run.rerun() is True

    control.set_run_script("acme/api", running=30)
    slow = wf.create_dispatch("main", {"marker": "slow"}, return_run_details=True)
    slow_run = gh.get_repo("acme/api").get_workflow_run(slow.id)
    assert slow_run.cancel() is True
    assert gh.get_repo("acme/api").get_workflow_run(slow.id).conclusion == "cancelled"
    assert slow_run.cancel() is False  # 409: already completed
    forced = control.finish_run("acme/api", slow.id, "failed")
    assert (forced["status"], forced["conclusion"]) == ("completed", "failure")


def test_runs_list_open_pull_requests_of_their_branch(
    gh: Github, control: SandboxClient, repo: dict
) -> None:
    pr = control.open_pull_request("acme/api", "feature", files={"a": "1"})
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    run = wf.create_dispatch("feature", {"marker": "p"}, return_run_details=True)
    got = gh.get_repo("acme/api").get_workflow_run(run.id)
    assert [p.number for p in got.pull_requests] == [pr["number"]]
    assert got.head_sha == pr["head"]["sha"]
