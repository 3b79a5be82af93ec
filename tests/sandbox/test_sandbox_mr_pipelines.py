"""GitLab merge request pipelines, pipeline hook fields, trigger payloads and retried jobs, as
GitLab has them (docs/sandbox.md, *Fidelity*)."""

from __future__ import annotations

import json
from typing import Any

import gitlab
import pytest
import requests

from sandbox.client import SandboxClient, wait_until
from sandbox.server import SandboxServer


@pytest.fixture
def project(control: SandboxClient) -> dict:
    return control.create_project("acme/app", files={"a.txt": "a\n"})


@pytest.fixture
def fork_mr(control: SandboxClient, project: dict) -> dict:
    """An MR from bob's fork: its branch exists only in the fork."""
    control.create_project("bob/app", files={"a.txt": "a\n"})
    return control.open_merge_request(
        project["id"], "fix", source_project="bob/app", files={"a.txt": "b\n"}, author="bob"
    )


def _pipeline_hooks(receiver: Any, pipeline_id: int, status: str) -> list[dict[str, Any]]:
    return [
        r["payload"]
        for r in receiver.events("Pipeline Hook")
        if r["payload"]["object_attributes"]["id"] == pipeline_id
        and r["payload"]["object_attributes"]["status"] == status
    ]


def test_a_fork_mr_pipeline_runs_in_the_target_project_on_the_mr_ref(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict, fork_mr: dict
) -> None:
    target = gl.projects.get(project["id"], lazy=True)
    # The fork's branch is not in the target: a branch pipeline there cannot find it ...
    with pytest.raises(gitlab.GitlabCreateError) as exc:
        target.pipelines.create({"ref": "fix"})
    assert exc.value.response_code == 400 and "Reference not found" in str(exc.value)
    # ... a merge request pipeline runs the MR's head in the target project.
    pipeline = target.mergerequests.get(fork_mr["iid"], lazy=True).pipelines.create()
    assert pipeline.ref == f"refs/merge-requests/{fork_mr['iid']}/head"
    assert pipeline.source == "merge_request_event"
    assert pipeline.sha == fork_mr["sha"]
    assert pipeline.project_id == project["id"]
    listed = target.pipelines.list(ref=pipeline.ref, source="merge_request_event")
    assert [p.id for p in listed] == [pipeline.id]
    assert control.wait_for_pipeline(project["id"], pipeline.id)["status"] == "success"


def test_creating_an_mr_pipeline_answers_200_without_variables(
    forge: SandboxServer, project: dict, fork_mr: dict
) -> None:
    url = f"{forge.url}/api/v4/projects/{project['id']}/merge_requests/{fork_mr['iid']}"
    r = requests.post(f"{url}/pipelines", headers={"PRIVATE-TOKEN": "x"}, timeout=5)
    assert r.status_code == 200, r.text
    variables = requests.get(
        f"{forge.url}/api/v4/projects/{project['id']}/pipelines/{r.json()['id']}/variables",
        headers={"PRIVATE-TOKEN": "x"},
        timeout=5,
    ).json()
    assert variables == []
    missing = requests.post(f"{url}9/pipelines", headers={"PRIVATE-TOKEN": "x"}, timeout=5)
    assert missing.status_code == 404


def test_an_mr_pipeline_without_ci_config_is_refused(
    gl: gitlab.Gitlab, control: SandboxClient
) -> None:
    bare = control.create_project("acme/bare", files={"a.txt": "a\n"}, ci_config=False)
    iid = control.open_merge_request(bare["id"], "feature", files={"b.txt": "b\n"})["iid"]
    mr = gl.projects.get(bare["id"], lazy=True).mergerequests.get(iid, lazy=True)
    with pytest.raises(gitlab.GitlabCreateError) as exc:
        mr.pipelines.create()
    assert exc.value.response_code == 400 and "Missing CI config file" in str(exc.value)


def test_pipeline_hooks_carry_protected_ref_the_source_ref_and_the_merge_request(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict, fork_mr: dict, receiver: Any
) -> None:
    control.add_hook(project["id"], receiver.url, pipeline_events=True)
    target = gl.projects.get(project["id"], lazy=True)
    on_main = target.pipelines.create({"ref": "main"})
    on_mr = target.mergerequests.get(fork_mr["iid"], lazy=True).pipelines.create()
    wait_until(lambda: _pipeline_hooks(receiver, on_mr.id, "success"), timeout=10)
    wait_until(lambda: _pipeline_hooks(receiver, on_main.id, "success"), timeout=10)

    main_hook = _pipeline_hooks(receiver, on_main.id, "success")[0]
    assert main_hook["object_attributes"]["ref"] == "main"
    assert main_hook["object_attributes"]["protected_ref"] is True  # the default branch
    assert main_hook["merge_request"] is None

    mr_hook = _pipeline_hooks(receiver, on_mr.id, "success")[0]
    attrs = mr_hook["object_attributes"]
    assert attrs["ref"] == "fix"  # the hook's ref is the MR's source branch (source_ref)
    assert attrs["source"] == "merge_request_event"
    assert attrs["protected_ref"] is False
    assert mr_hook["project"]["id"] == project["id"]
    assert mr_hook["merge_request"]["iid"] == fork_mr["iid"]
    assert mr_hook["merge_request"]["source_project_id"] != project["id"]
    assert mr_hook["merge_request"]["target_project_id"] == project["id"]


def test_trigger_pipelines_carry_trigger_payload_and_api_pipelines_do_not(
    forge: SandboxServer, gl: gitlab.Gitlab, control: SandboxClient, project: dict, receiver: Any
) -> None:
    control.add_hook(project["id"], receiver.url, pipeline_events=True)
    token = control.create_trigger(project["id"])
    url = f"{forge.url}/api/v4/projects/{project['id']}"
    r = requests.post(
        f"{url}/trigger/pipeline",
        json={"ref": "main", "token": token, "variables": {"A": "1"}, "key1": "x"},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    triggered = gl.projects.get(project["id"], lazy=True).pipelines.get(r.json()["id"])
    variables = {v.key: v for v in triggered.variables.list()}
    assert variables["A"].value == "1"
    assert variables["TRIGGER_PAYLOAD"].variable_type == "file"
    payload = json.loads(variables["TRIGGER_PAYLOAD"].value)
    assert payload == {
        "key1": "x",
        "id": str(project["id"]),
        "ref": "main",
        "variables": {"A": "1"},
    }
    assert token not in variables["TRIGGER_PAYLOAD"].value  # the token is left out
    wait_until(lambda: _pipeline_hooks(receiver, triggered.id, "success"), timeout=10)
    hook_vars = _pipeline_hooks(receiver, triggered.id, "success")[0]["object_attributes"][
        "variables"
    ]
    assert "TRIGGER_PAYLOAD" in {v["key"] for v in hook_vars}

    # Baton's way (POST /projects/:id/pipeline with variables) is no trigger: no payload.
    api = gl.projects.get(project["id"], lazy=True).pipelines.create(
        {"ref": "main", "variables": [{"key": "A", "value": "1"}]}
    )
    assert api.source == "api"
    assert [v.key for v in api.variables.list()] == ["A"]


def test_retried_jobs_are_listed_only_with_include_retried(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    control.set_script(project["id"], "failed", running=0.2, queue=["failed", "failed", "success"])
    pipeline = gl.projects.get(project["id"], lazy=True).pipelines.create({"ref": "main"})
    assert control.wait_for_pipeline(project["id"], pipeline.id)["status"] == "failed"
    pipeline.retry()
    assert control.wait_for_pipeline(project["id"], pipeline.id)["status"] == "failed"
    pipeline.retry()
    assert control.wait_for_pipeline(project["id"], pipeline.id)["status"] == "success"

    latest = pipeline.jobs.list(get_all=True)
    assert [j.status for j in latest] == ["success"]
    every = pipeline.jobs.list(include_retried=True, get_all=True)
    assert [j.status for j in every] == ["success", "failed", "failed"]
    assert [j.id for j in every] == sorted((j.id for j in every), reverse=True)  # newest first
    assert every[0].id == latest[0].id
    failed = pipeline.jobs.list(include_retried=True, scope=["failed"], get_all=True)
    assert [j.id for j in failed] == [j.id for j in every[1:]]
