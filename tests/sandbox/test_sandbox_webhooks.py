"""Pipelines reach their scripted outcome and webhooks arrive in order, shaped like GitLab's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gitlab

from sandbox.client import SandboxClient, wait_until

FIXTURES = Path("/work/shared/fixtures/webhooks")
HEADERS = {
    "Content-Type",
    "User-Agent",
    "X-Gitlab-Event",
    "X-Gitlab-Token",
    "X-Gitlab-Event-UUID",
    "X-Gitlab-Webhook-UUID",
    "Idempotency-Key",
    "X-Gitlab-Instance",
}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def assert_keys_like(
    payload: dict[str, Any], name: str, *, optional: frozenset[str] = frozenset()
) -> None:
    expected = fixture(name)
    assert set(expected) - optional <= set(payload), set(expected) - set(payload)
    attrs = expected["object_attributes"]
    assert set(attrs) - optional <= set(payload["object_attributes"])


def test_pipeline_hooks_in_order_with_headers(
    gl: gitlab.Gitlab, control: SandboxClient, receiver: Any
) -> None:
    project = control.create_project("acme/app", hooks=[{"url": receiver.url, "token": "s3"}])
    control.set_script("acme/app", "failed", pending=0.2, running=0.4)
    p = gl.projects.get("acme/app", lazy=True)
    pipeline = p.pipelines.create({"ref": "main", "variables": [{"key": "K", "value": "v"}]})
    done = control.wait_for_pipeline("acme/app", pipeline.id)
    assert done["status"] == "failed"
    assert p.pipelines.get(pipeline.id).finished_at is not None

    hooks = wait_until(
        lambda: len(receiver.events("Pipeline Hook")) >= 4 and receiver.events("Pipeline Hook"),
        5,
        "4 pipeline hooks",
    )
    statuses = [h["payload"]["object_attributes"]["status"] for h in hooks]
    assert statuses == ["created", "pending", "running", "failed"]
    first = hooks[0]
    assert set(first["headers"]) >= HEADERS
    assert first["headers"]["X-Gitlab-Token"] == "s3"
    assert first["headers"]["User-Agent"].startswith("GitLab/")
    assert len({h["headers"]["Idempotency-Key"] for h in hooks}) == 4
    payload = hooks[-1]["payload"]
    optional = frozenset({"source_pipeline", "name"})
    assert_keys_like(payload, "gitlab_pipeline.json", optional=optional)
    attrs = payload["object_attributes"]
    assert attrs["id"] == pipeline.id and attrs["sha"] == project["head_sha"]
    assert attrs["variables"] == [{"key": "K", "value": "v"}]
    assert attrs["finished_at"].endswith(" UTC")
    assert payload["merge_request"] is None
    assert payload["project"]["path_with_namespace"] == "acme/app"
    assert set(fixture("gitlab_pipeline.json")["builds"][0]) <= set(payload["builds"][0])

    log = control.webhooks(event="Pipeline Hook")
    assert [w["status"] for w in log] == [202] * 4
    assert "X-Gitlab-Token" not in log[0]["headers"]


def test_retry_consumes_the_script_queue(gl: gitlab.Gitlab, control: SandboxClient) -> None:
    control.create_project("acme/app")
    control.set_script("acme/app", queue=["failed", "success"], running=0.2)
    control.set_script("acme/app", "canceled", ref="release", running=0.2)
    control.commit("acme/app", {"r": "1"}, branch="release")
    p = gl.projects.get("acme/app", lazy=True)
    first = p.pipelines.create({"ref": "main"})
    assert control.wait_for_pipeline("acme/app", first.id)["status"] == "failed"
    first.retry()
    assert control.wait_for_pipeline("acme/app", first.id)["status"] == "success"
    second = p.pipelines.create({"ref": "main"})
    assert control.wait_for_pipeline("acme/app", second.id)["status"] == "success"
    release = p.pipelines.create({"ref": "release"})
    assert control.wait_for_pipeline("acme/app", release.id)["status"] == "canceled"
    forced = p.pipelines.create({"ref": "main"})
    assert control.finish_pipeline("acme/app", forced.id, "failed")["status"] == "failed"


def test_merge_request_lifecycle_hooks(control: SandboxClient, receiver: Any) -> None:
    control.create_project("acme/app", hooks=[{"url": receiver.url, "token": "t"}])
    mr = control.open_merge_request(
        "acme/app", "feature", files={"a.txt": "1"}, title="Feature", author="alice"
    )
    old = mr["sha"]
    new = control.push("acme/app", mr["iid"], {"a.txt": "2"})
    control.edit_merge_request("acme/app", mr["iid"], title="Feature v2")
    control.close_merge_request("acme/app", mr["iid"], author="bob")
    control.reopen_merge_request("acme/app", mr["iid"])
    merged = control.merge("acme/app", mr["iid"])
    assert merged["state"] == "merged"

    hooks = wait_until(
        lambda: (
            len(receiver.events("Merge Request Hook")) >= 6
            and receiver.events("Merge Request Hook")
        ),
        5,
        "6 MR hooks",
    )
    attrs = [h["payload"]["object_attributes"] for h in hooks]
    assert [a["action"] for a in attrs] == ["open", "update", "update", "close", "reopen", "merge"]
    assert attrs[0]["last_commit"]["id"] == old and "oldrev" not in attrs[0]
    assert attrs[1]["oldrev"] == old and attrs[1]["last_commit"]["id"] == new
    assert (
        "oldrev" not in attrs[2]
        and hooks[2]["payload"]["changes"]["title"]["current"] == "Feature v2"
    )
    assert hooks[3]["payload"]["user"]["username"] == "bob"
    assert [a["state"] for a in attrs] == [
        "opened",
        "opened",
        "opened",
        "closed",
        "opened",
        "merged",
    ]
    opened = hooks[0]["payload"]
    assert_keys_like(opened, "gitlab_merge_request_open_current_docs.json")
    assert opened["object_attributes"]["source_branch"] == "feature"
    assert opened["object_attributes"]["target_branch"] == "main"
    assert opened["object_attributes"]["url"].endswith("/acme/app/-/merge_requests/1")
    assert opened["user"]["username"] == "alice"
    pushes = receiver.events("Push Hook")
    assert [h["payload"]["ref"] for h in pushes][-1] == "refs/heads/main"  # the merge commit


def test_note_hooks_from_control_and_api(
    gl: gitlab.Gitlab, control: SandboxClient, receiver: Any
) -> None:
    control.create_project("acme/app", hooks=[{"url": receiver.url, "token": "t"}])
    mr = control.open_merge_request("acme/app", "feature", files={"a": "1"})
    control.comment("acme/app", mr["iid"], "/baton retry", author="carol")
    note = (
        gl.projects.get("acme/app", lazy=True)
        .mergerequests.get(mr["iid"], lazy=True)
        .notes.create({"body": "summary"})
    )
    note.body = "summary v2"
    note.save()
    hooks = wait_until(
        lambda: len(receiver.events("Note Hook")) >= 3 and receiver.events("Note Hook"),
        5,
        "3 note hooks",
    )
    payloads = [h["payload"] for h in hooks]
    assert [p["object_attributes"]["action"] for p in payloads] == ["create", "create", "update"]
    assert [p["user"]["username"] for p in payloads] == ["carol", "baton-bot", "baton-bot"]
    first = payloads[0]
    assert_keys_like(first, "gitlab_note_merge_request.json")
    assert first["object_attributes"]["noteable_type"] == "MergeRequest"
    assert first["object_attributes"]["note"] == "/baton retry"
    assert first["merge_request"]["iid"] == mr["iid"]
    assert first["merge_request"]["last_commit"]["id"] == mr["sha"]
    assert set(fixture("gitlab_note_merge_request.json")["merge_request"]) <= set(
        first["merge_request"]
    )


def test_mr_pipeline_hook_carries_the_merge_request(
    gl: gitlab.Gitlab, control: SandboxClient, receiver: Any
) -> None:
    control.create_project(
        "acme/app", hooks=[{"url": receiver.url, "token": "t", "pipeline_events": True}]
    )
    mr = control.open_merge_request("acme/app", "feature", files={"a": "1"})
    gl.projects.get("acme/app", lazy=True).mergerequests.get(
        mr["iid"], lazy=True
    ).pipelines.create()
    hooks = wait_until(lambda: receiver.events("Pipeline Hook"), 5, "a pipeline hook")
    payload = hooks[0]["payload"]
    # GitLab's hook shows source_ref, the MR's branch (the REST API says the MR ref)
    assert payload["object_attributes"]["ref"] == "feature"
    assert payload["object_attributes"]["source"] == "merge_request_event"
    assert payload["merge_request"]["iid"] == mr["iid"]
