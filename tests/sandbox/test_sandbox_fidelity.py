"""The sandbox behaves like the real forges where Baton would notice (docs/sandbox.md)."""

from __future__ import annotations

from typing import Any

import gitlab
import pytest
import requests

from sandbox import webhooks
from sandbox.client import SandboxClient, wait_until
from sandbox.faults import Faults
from sandbox.journal import Journal
from sandbox.model import Hook
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


def test_the_default_ref_is_a_branch_containing_the_commit(
    forge: SandboxServer, control: SandboxClient, project: dict
) -> None:
    running = _post_status(forge, project, "running").json()
    assert running["ref"] == "main"
    control.commit(project["id"], {"b.txt": "b\n"})  # main moves on; the commit stays in it
    canceled = _post_status(forge, project, "canceled").json()
    assert canceled["id"] == running["id"] and canceled["status"] == "canceled"


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


# -- webhooks -----------------------------------------------------------------------------------

REFUSED = "http://127.0.0.1:9/hooks/gitlab/"  # nothing listens: every delivery fails


def test_receivers_get_ten_seconds(forge: SandboxServer) -> None:
    assert forge.sandbox.sender.timeout == 10.0


def test_a_gitlab_hook_failing_four_times_is_temporarily_disabled(
    gl: gitlab.Gitlab, control: SandboxClient
) -> None:
    p = control.create_project("acme/hooked", hooks=[{"url": REFUSED, "push_events": True}])
    for n in range(5):
        control.commit("acme/hooked", {"f.txt": str(n)})
    wait_until(lambda: len(control.webhooks(event="Push Hook")) == 5, 10, "five push hooks")
    log = control.webhooks(event="Push Hook")
    assert [w.get("disabled") for w in log] == [None, None, None, None, "temporarily"]
    assert all(w["error"] for w in log[:4])
    hook = gl.projects.get(p["id"], lazy=True).hooks.list()[0]
    assert hook.alert_status == "temporarily_disabled" and hook.disabled_until
    control.enable_hook("acme/hooked", hook.id)
    assert gl.projects.get(p["id"], lazy=True).hooks.list()[0].alert_status == "executable"


def test_forty_consecutive_failures_disable_a_hook_for_good() -> None:
    sender = webhooks.WebhookSender(Journal(), Faults(), time_scale=1e9)  # backoffs over at once
    hook = Hook(1, 1, REFUSED)
    for _ in range(39):
        sender._count(hook, ok=False)
    assert not hook.permanently_disabled and hook.alert_status != "disabled"
    sender._count(hook, ok=False)
    assert hook.permanently_disabled and hook.alert_status == "disabled"
    assert sender._disabled(hook) == "permanently"


def test_a_success_resets_the_failure_count() -> None:
    sender = webhooks.WebhookSender(Journal(), Faults())
    hook = Hook(1, 1, REFUSED)
    for _ in range(3):
        sender._count(hook, ok=False)
    sender._count(hook, ok=True)
    sender._count(hook, ok=False)
    assert hook.recent_failures == 1 and hook.alert_status == "executable"


def _notes(receiver: Any) -> list[str]:
    return [r["payload"]["object_attributes"]["note"] for r in receiver.events("Note Hook")]


@pytest.fixture
def mr(control: SandboxClient, receiver: Any) -> None:
    control.create_project("acme/lib", hooks=[{"url": receiver.url, "token": "t"}])
    control.open_merge_request("acme/lib", "feature", files={"a": "1"})


def test_a_delayed_delivery_is_overtaken(control: SandboxClient, receiver: Any, mr: None) -> None:
    control.add_fault(mode="delay_webhooks", event="Note Hook", delay=0.5, count=1)
    control.comment("acme/lib", 1, "first")
    control.comment("acme/lib", 1, "second")
    wait_until(lambda: len(_notes(receiver)) == 2, 5, "both notes")
    assert _notes(receiver) == ["second", "first"]
    # The forge's log gets an attempt once its answer is in, after the receiver saw it.
    wait_until(lambda: len(control.webhooks(event="Note Hook")) == 2, 5, "both attempts logged")
    assert [w.get("delayed") for w in control.webhooks(event="Note Hook")] == [None, 0.5]


def test_a_reordered_delivery_comes_after_the_next(
    control: SandboxClient, receiver: Any, mr: None
) -> None:
    control.add_fault(mode="reorder_webhooks", event="Note Hook", count=1)
    control.comment("acme/lib", 1, "first")
    control.comment("acme/lib", 1, "second")
    wait_until(lambda: len(_notes(receiver)) == 2, 5, "both notes")
    assert _notes(receiver) == ["second", "first"]


@pytest.mark.parametrize("new_id", [False, True])
def test_duplicated_deliveries(
    control: SandboxClient, receiver: Any, mr: None, new_id: bool
) -> None:
    control.add_fault(mode="duplicate_webhooks", event="Note Hook", new_id=new_id, count=1)
    control.comment("acme/lib", 1, "twice")
    wait_until(lambda: len(_notes(receiver)) == 2, 5, "two copies")
    first, second = receiver.events("Note Hook")
    assert first["body"] == second["body"]
    for header in ("Idempotency-Key", "X-Gitlab-Event-UUID"):
        assert (first["headers"][header] != second["headers"][header]) is new_id


def test_webhook_faults_fire_at_a_rate(control: SandboxClient, receiver: Any, mr: None) -> None:
    control.add_fault(mode="drop_webhooks", event="Note Hook", rate=0.5)
    for n in range(40):
        control.comment("acme/lib", 1, str(n))
    wait_until(lambda: len(control.webhooks(event="Note Hook")) == 40, 10, "forty attempts")
    dropped = sum(w["dropped"] for w in control.webhooks(event="Note Hook"))
    assert 5 < dropped < 35
