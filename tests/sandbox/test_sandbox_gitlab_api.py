"""The GitLab REST v4 subset, exercised through the real python-gitlab client."""

from __future__ import annotations

import time
import warnings
from typing import Any

import gitlab
import pytest
import requests

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

BATON_YML = "downstream:\n  - project: acme/docs\n"


@pytest.fixture
def project(control: SandboxClient) -> dict:
    return control.create_project(
        "group/sub/proj",
        files={".baton.yml": BATON_YML, "ci/downstream.env": "A=1\n"},
        members={"alice": 30},
    )


def test_project_by_encoded_nested_path_and_by_id(gl: gitlab.Gitlab, project: dict) -> None:
    by_path = gl.projects.get("group/sub/proj")
    by_id = gl.projects.get(project["id"])
    assert by_path.id == by_id.id == project["id"]
    assert by_path.path_with_namespace == "group/sub/proj"
    assert by_path.default_branch == "main"
    assert by_path.web_url == project["web_url"]
    assert [p.id for p in gl.projects.list()] == [project["id"]]


def test_auth_user_and_users(gl: gitlab.Gitlab, project: dict) -> None:
    gl.auth()
    assert gl.user is not None
    assert (gl.user.username, gl.user.id) == ("baton-bot", 1)
    alice = gl.users.list(username="alice")[0]
    assert gl.users.get(alice.id).username == "alice"
    p = gl.projects.get(project["id"], lazy=True)
    assert p.members_all.get(alice.id).access_level == 30
    with pytest.raises(gitlab.GitlabGetError) as exc:
        p.members_all.get(1)
    assert exc.value.response_code == 404


def test_missing_token_is_401_and_unknown_project_404(forge: SandboxServer, project: dict) -> None:
    r = requests.get(f"{forge.url}/api/v4/projects/1")
    assert r.status_code == 401
    assert r.json() == {"message": "401 Unauthorized"}
    r = requests.get(f"{forge.url}/api/v4/projects/nope%2Fnope", headers={"PRIVATE-TOKEN": "x"})
    assert r.status_code == 404
    assert r.json() == {"message": "404 Project Not Found"}
    r = requests.get(f"{forge.url}/api/v4/projects/1", headers={"Authorization": "Bearer t"})
    assert r.status_code == 200


def test_files_at_branch_tag_and_sha(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    first = project["head_sha"]
    control.tag("group/sub/proj", "v1.0")
    second = control.commit("group/sub/proj", {".baton.yml": "changed\n"}, message="Change")
    p = gl.projects.get("group/sub/proj", lazy=True)
    assert p.files.raw(file_path="ci/downstream.env", ref="main") == b"A=1\n"
    assert p.files.raw(file_path=".baton.yml", ref=first) == BATON_YML.encode()
    assert p.files.raw(file_path=".baton.yml", ref="v1.0") == BATON_YML.encode()
    assert p.files.raw(file_path=".baton.yml", ref=second) == b"changed\n"
    f = p.files.get(file_path=".baton.yml", ref="main")
    assert f.decode() == b"changed\n"
    assert f.commit_id == second
    with pytest.raises(gitlab.GitlabGetError) as exc:
        p.files.raw(file_path="missing.txt", ref="main")
    assert exc.value.response_code == 404
    assert p.branches.get("main").commit["id"] == second
    assert p.commits.get(first).id == first


def test_pipeline_with_variables(gl: gitlab.Gitlab, project: dict) -> None:
    p = gl.projects.get(project["id"], lazy=True)
    pipeline = p.pipelines.create(
        {
            "ref": "main",
            "variables": [
                {"key": "BATON_RUN_ID", "value": "42"},
                {"key": "F", "value": "x", "variable_type": "file"},
            ],
        }
    )
    assert pipeline.status == "created"
    assert pipeline.source == "api"
    assert pipeline.sha == project["head_sha"]
    assert pipeline.web_url == f"{project['web_url']}/-/pipelines/{pipeline.id}"
    assert pipeline.created_at.endswith("Z") and "." in pipeline.created_at
    got = {v.key: (v.value, v.variable_type) for v in pipeline.variables.list()}
    assert got == {"BATON_RUN_ID": ("42", "env_var"), "F": ("x", "file")}
    assert p.pipelines.get(pipeline.id).ref == "main"


def test_unknown_ref_is_400_reference_not_found(gl: gitlab.Gitlab, project: dict) -> None:
    p = gl.projects.get(project["id"], lazy=True)
    with pytest.raises(gitlab.GitlabCreateError) as exc:
        p.pipelines.create({"ref": "nope"})
    assert exc.value.response_code == 400
    assert "Reference not found" in str(exc.value.error_message)


def test_form_and_query_bodies_are_accepted(forge: SandboxServer, project: dict) -> None:
    base = f"{forge.url}/api/v4/projects/group%2Fsub%2Fproj"
    r = requests.post(
        f"{base}/pipeline?ref=main",
        headers={"PRIVATE-TOKEN": "x"},
        data={
            "variables[0][key]": "A",
            "variables[0][value]": "1",
            "variables[1][key]": "B",
            "variables[1][value]": "2",
        },
    )
    assert r.status_code == 201
    pid = r.json()["id"]
    r = requests.get(f"{base}/pipelines/{pid}/variables", headers={"PRIVATE-TOKEN": "x"})
    assert [(v["key"], v["value"]) for v in r.json()] == [("A", "1"), ("B", "2")]


def test_list_filters_and_pagination(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    control.set_script(project["id"], "success", created=1000)
    control.commit(project["id"], {"x": "1"}, branch="feature")
    p = gl.projects.get(project["id"], lazy=True)
    ids = [p.pipelines.create({"ref": "main"}).id for _ in range(25)]
    feature = p.pipelines.create({"ref": "feature"}).id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        everything = p.pipelines.list(get_all=True, per_page=10)
        mains = p.pipelines.list(ref="main", get_all=True)
    assert [x.id for x in everything] == sorted([*ids, feature], reverse=True)
    assert [x.id for x in mains] == sorted(ids, reverse=True)
    assert [x.id for x in p.pipelines.list(ref="feature", status="created")] == [feature]
    asc = p.pipelines.list(ref="main", sort="asc", per_page=5, page=2)
    assert [x.id for x in asc] == ids[5:10]
    r = requests.get(
        f"{gl.url}/api/v4/projects/{project['id']}/pipelines?per_page=10&page=2",
        headers={"PRIVATE-TOKEN": "x"},
    )
    h = r.headers
    assert (h["x-page"], h["x-per-page"]) == ("2", "10")
    assert (h["x-total"], h["x-total-pages"]) == ("26", "3")
    assert (h["x-next-page"], h["x-prev-page"]) == ("3", "1")
    assert (
        f'<{gl.url}/api/v4/projects/{project["id"]}/pipelines?page=3&per_page=10>; rel="next"'
        in h["Link"]
    )
    assert 'rel="last"' in h["Link"] and 'rel="first"' in h["Link"]
    assert p.pipelines.latest(ref="feature").id == feature


def test_trigger_pipeline_with_token(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    p = gl.projects.get(project["id"], lazy=True)
    token = p.triggers.create({"description": "baton"}).token
    pipeline = p.trigger_pipeline("main", token, variables={"UPSTREAM_REF": "refs/heads/main"})
    assert pipeline.source == "trigger"
    assert [(v.key, v.value) for v in pipeline.variables.list()][:1] == [
        ("UPSTREAM_REF", "refs/heads/main")
    ]  # then TRIGGER_PAYLOAD (tests/sandbox/test_sandbox_mr_pipelines.py)
    control_token = control.create_trigger(project["id"])
    assert p.trigger_pipeline("main", control_token).status == "created"
    with pytest.raises(gitlab.GitlabCreateError) as exc:
        p.trigger_pipeline("main", "glptt-wrong")
    assert exc.value.response_code == 404


def test_trigger_rules(forge: SandboxServer, control: SandboxClient, project: dict) -> None:
    token = control.create_trigger(project["id"])
    url = f"{forge.url}/api/v4/projects/{project['id']}"
    r = requests.post(
        f"{url}/trigger/pipeline",
        json={"ref": "main", "token": token},
        headers={"X-Gitlab-Event": "Pipeline Hook"},
    )
    assert r.status_code == 403
    r = requests.post(
        f"{url}/trigger/pipeline", json={"ref": "main", "token": token, "variables": {"N": 1}}
    )
    assert r.status_code == 400
    assert r.json() == {"message": "variables needs to be a map of key-valued strings"}
    r = requests.post(
        f"{url}/ref/main/trigger/pipeline?token={token}", data={"variables[VAR1]": "value1"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "trigger"
    assert control.pipelines(project["id"])[-1]["variables"][0]["key"] == "VAR1"
    r = requests.post(f"{url}/trigger/pipeline", json={"ref": "nope", "token": token})
    assert r.status_code == 400
    assert r.json() == {"message": {"base": ["Reference not found"]}}


def test_retry_and_cancel(gl: gitlab.Gitlab, control: SandboxClient, project: dict) -> None:
    control.set_script(project["id"], "failed", running=0.2, queue=["failed", "success"])
    p = gl.projects.get(project["id"], lazy=True)
    pipeline = p.pipelines.create({"ref": "main"})
    assert control.wait_for_pipeline(project["id"], pipeline.id)["status"] == "failed"
    retried: Any = pipeline.retry()
    assert retried["id"] == pipeline.id and retried["status"] == "pending"
    assert control.wait_for_pipeline(project["id"], pipeline.id)["status"] == "success"

    control.set_script(project["id"], "success", running=1000)
    slow = p.pipelines.create({"ref": "main"})
    control.wait_for_pipeline(project["id"], slow.id, statuses=("running",))
    canceled: Any = slow.cancel()
    assert canceled["status"] == "canceled"
    assert p.pipelines.get(slow.id).status == "canceled"
    canceled = slow.cancel()
    assert canceled["status"] == "canceled"  # 200 regardless of state
    assert p.pipelines.get(slow.id).finished_at is not None
    jobs = slow.jobs.list()
    assert [j.status for j in jobs] == ["canceled"]
    assert slow.bridges.list() == []


def test_merge_request_notes(gl: gitlab.Gitlab, control: SandboxClient, project: dict) -> None:
    mr_json = control.open_merge_request(
        project["id"], "feature", files={"a.txt": "a"}, title="Add a"
    )
    mr = gl.projects.get(project["id"], lazy=True).mergerequests.get(mr_json["iid"])
    assert (mr.source_branch, mr.target_branch, mr.state) == ("feature", "main", "opened")
    assert mr.sha == mr_json["sha"]
    assert mr.author["username"] == "alice"
    control.comment(project["id"], mr.iid, "/baton retry", author="alice")
    note = mr.notes.create({"body": "Baton summary"})
    assert note.author["username"] == "baton-bot"
    note.body = "Baton summary (edited)"
    note.save()
    assert mr.notes.get(note.id).body == "Baton summary (edited)"
    listed = mr.notes.list(sort="asc", order_by="created_at", get_all=True)
    assert [n.body for n in listed] == ["/baton retry", "Baton summary (edited)"]
    opened = gl.projects.get(project["id"], lazy=True).mergerequests.list(state="opened")
    assert [m.iid for m in opened] == [mr.iid]


def test_mr_pipeline(gl: gitlab.Gitlab, control: SandboxClient, project: dict) -> None:
    iid = control.open_merge_request(project["id"], "feature", files={"a": "1"})["iid"]
    mr = gl.projects.get(project["id"], lazy=True).mergerequests.get(iid, lazy=True)
    pipeline = mr.pipelines.create()
    assert pipeline.ref == f"refs/merge-requests/{iid}/head"
    assert pipeline.source == "merge_request_event"


def test_commit_statuses(gl: gitlab.Gitlab, project: dict) -> None:
    p = gl.projects.get(project["id"], lazy=True)
    commit = p.commits.get(project["head_sha"], lazy=True)
    commit.statuses.create({"state": "running", "name": "baton/docs", "target_url": "http://x"})
    commit.statuses.create({"state": "success", "name": "baton/docs"})
    commit.statuses.create({"state": "pending", "context": "baton"})
    statuses = {s.name: s.status for s in p.commits.get(project["head_sha"]).statuses.list()}
    assert statuses == {"baton/docs": "success", "baton": "pending"}
    with pytest.raises(gitlab.GitlabCreateError):
        commit.statuses.create({"state": "bogus", "name": "x"})


def test_hooks_crud(gl: gitlab.Gitlab, project: dict) -> None:
    p = gl.projects.get(project["id"], lazy=True)
    hook = p.hooks.create(
        {
            "url": "http://example.test/h",
            "token": "s",
            "pipeline_events": True,
            "push_events": False,
        }
    )
    assert hook.pipeline_events is True and hook.push_events is False
    hook.note_events = True
    hook.save()
    assert p.hooks.get(hook.id).note_events is True
    assert [h.id for h in p.hooks.list()] == [hook.id]
    hook.delete()
    assert p.hooks.list() == []


def test_pipelines_updated_after_a_time_newest_change_first(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    """What Baton's polling asks (bots/forges/gitlab.py: changed_pipelines): the pipelines
    updated after a time (``updated_after``), the newest change first (``order_by=updated_at``)."""
    control.set_script(project["id"], created=3600.0)  # nothing moves unless told to
    p = gl.projects.get(project["id"], lazy=True)
    first = p.pipelines.create({"ref": "main"})
    second = p.pipelines.create({"ref": "main"})
    # GitLab renders times to the millisecond and compares them to the microsecond: a pipeline
    # changed within the same millisecond as ``changed`` below is "updated after" its rendering.
    # Two milliseconds apart, the second pipeline's last change is before the first's, rendered.
    time.sleep(0.002)
    control.finish_pipeline(project["id"], first.id, "failed")
    listed = p.pipelines.list(order_by="updated_at", sort="desc", get_all=True)
    assert [x.id for x in listed] == [first.id, second.id]  # the newest change first
    assert [x.id for x in p.pipelines.list(order_by="id", get_all=True)] == [second.id, first.id]
    changed = p.pipelines.get(first.id).updated_at
    since = p.pipelines.list(updated_after=changed, order_by="updated_at", get_all=True)
    assert second.id not in [x.id for x in since]  # not updated since then
