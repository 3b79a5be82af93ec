"""Pushes and tags in the sandbox set off chains (`on: [push]`, `on: [tag]`) on GitLab and GitHub:
the downstream gets `UPSTREAM_REF` = refs/heads/<b> or refs/tags/<t>, statuses go on the pushed
commit, a newer push to the branch supersedes the running chain, and the release view lists them.
"""

from __future__ import annotations

from typing import Any

import pytest

from chains.models import Chain, Delivery
from dashboard import queries
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_github_chain import workflows

pytestmark = [pytest.mark.e2e]

PUSH_YML = """\
downstream:
  - key: build
    project: {target}
    on: [push]
    branches: main{workflow}
  - key: release
    project: {target}
    on: [tag]
    branches: "v*"{workflow}
  - key: review
    project: {target}{workflow}
"""


def chain_for(sha: str, action: str) -> Chain | None:
    return Chain.objects.filter(head_sha=sha, trigger_action=action).first()


def finished(sha: str, action: str) -> Chain | None:
    chain = chain_for(sha, action)
    if (
        chain
        and chain.status in ("success", "failed", "canceled")
        and chain.mirror_requested_at is None
        and chain.mirror_lease_until is None
    ):
        return chain
    return None


def running_chain(sha: str, action: str = "push") -> Chain | None:
    chain = chain_for(sha, action)
    return chain if chain and chain.runs.filter(status="running").exists() else None


def test_gitlab_branch_pushes_supersede_and_a_tag_runs_its_targets(forges: Forges) -> None:
    forges.project("acme/api", running=600)  # runs until the test finishes them
    forges.project("acme/app", {".baton.yml": PUSH_YML.format(target="acme/api", workflow="")})
    sandbox = forges.sandbox

    first_sha = sandbox.commit("acme/app", {"a.py": "1"}, author="alice", message="One")
    first = eventually(lambda: running_chain(first_sha), 40, "the first push's run to start")
    assert {r.key for r in first.runs.all()} == {"build"}  # review runs on merge requests
    second_sha = sandbox.commit("acme/app", {"a.py": "2"}, author="alice", message="Two")
    second = eventually(lambda: running_chain(second_sha), 40, "the second push's run")
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk
    eventually(lambda: set(first.runs.values_list("status", flat=True)) == {"canceled"}, 40)
    build = second.runs.get()
    sandbox.finish_pipeline("acme/api", int(build.remote_id), "success")
    second = eventually(lambda: finished(second_sha, "push"), 40, "the second chain to end")
    assert second.status == "success" and second.upstream_ref == "refs/heads/main"

    variables = {v["BATON_RUN_ID"]: v for v in forges.pipeline_variables("acme/api")}
    pushed = variables[str(build.pk)]
    assert pushed["UPSTREAM_REF"] == "refs/heads/main"
    assert pushed["UPSTREAM_BRANCH"] == "main"
    assert pushed["UPSTREAM_SHA"] == second_sha
    assert not {"UPSTREAM_MR_IID", "UPSTREAM_MR_URL", "UPSTREAM_TARGET_BRANCH"} & set(pushed)
    assert forges.statuses("acme/app", second_sha) == {"baton/build": "success", "baton": "success"}
    assert sandbox.requests(method="POST", path="/notes") == []  # no change: no comment

    tag_sha = sandbox.tag("acme/app", "v1.0.0", author="alice")
    assert tag_sha == second_sha
    tag_chain = eventually(lambda: running_chain(tag_sha, "tag"), 40, "the tag's run")
    release = tag_chain.runs.get()
    assert release.key == "release"
    sandbox.finish_pipeline("acme/api", int(release.remote_id), "success")
    tag_chain = eventually(lambda: finished(tag_sha, "tag"), 40, "the tag chain to end")
    tagged = {v["BATON_RUN_ID"]: v for v in forges.pipeline_variables("acme/api")}[str(release.pk)]
    assert tagged["UPSTREAM_REF"] == "refs/tags/v1.0.0" and "UPSTREAM_BRANCH" not in tagged
    # The tag chain did not supersede the branch's: each ref is its own line.
    second.refresh_from_db()
    assert second.superseded_by_id is None
    assert [c.pk for c in queries.release("v1.0.0").chains] == [tag_chain.pk]
    outcomes = dict(Delivery.objects.filter(event="Tag Push Hook").values_list("event", "outcome"))
    assert outcomes == {"Tag Push Hook": "processed"}


def test_github_branch_pushes_supersede_and_a_tag_runs_its_targets(forges: Forges) -> None:
    workflows(forges, "acme/docs")
    sandbox = forges.sandbox
    sandbox.set_run_script("acme/docs", running=600)
    yml = PUSH_YML.format(target="acme/docs", workflow="\n    workflow: preview.yml")
    forges.repo("acme/app", {".baton.yml": yml})

    first_sha = sandbox.github_commit("acme/app", {"a.py": "1"}, author="alice", message="One")
    first = eventually(lambda: running_chain(first_sha), 40, "the first push's run to start")
    second_sha = sandbox.github_commit("acme/app", {"a.py": "2"}, author="alice", message="Two")
    second = eventually(lambda: running_chain(second_sha), 40, "the second push's run")
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk
    eventually(lambda: set(first.runs.values_list("status", flat=True)) == {"canceled"}, 40)
    build = second.runs.get()
    sandbox.finish_run("acme/docs", int(build.remote_id), "success")
    eventually(lambda: finished(second_sha, "push"), 40, "the second chain to end")
    runs = {str(r["id"]): r for r in sandbox.workflow_runs("acme/docs")}
    inputs: dict[str, Any] = runs[build.remote_id]["inputs"]
    assert inputs["UPSTREAM_REF"] == "refs/heads/main"
    assert inputs["UPSTREAM_SHA"] == second_sha
    status = forges.github_api(f"/repos/acme/app/commits/{second_sha}/status")
    states = {s["context"]: s["state"] for s in status["statuses"]}
    assert states == {"baton/build": "success", "baton": "success"}

    tag_sha = sandbox.github_tag("acme/app", "v1.0.0", author="alice")
    tag_chain = eventually(lambda: running_chain(tag_sha, "tag"), 40, "the tag's run")
    release = tag_chain.runs.get()
    sandbox.finish_run("acme/docs", int(release.remote_id), "success")
    eventually(lambda: finished(tag_sha, "tag"), 40, "the tag chain to end")
    runs = {str(r["id"]): r for r in sandbox.workflow_runs("acme/docs")}
    assert runs[release.remote_id]["inputs"]["UPSTREAM_REF"] == "refs/tags/v1.0.0"
    # GitHub sent `create` and `push` for the tag: one chain, from the push.
    assert Chain.objects.filter(trigger_action="tag").count() == 1
    assert set(Delivery.objects.filter(event="create").values_list("outcome", flat=True)) <= {
        "ignored"
    }
