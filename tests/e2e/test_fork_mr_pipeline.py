"""A merge request from a fork whose `.baton.yml` has a `project: self` target: Baton runs the
MR's merge request pipeline in the target project on refs/merge-requests/<iid>/head (the fork's
branch does not exist there), follows it to the end and mirrors it, with a real worker,
PostgreSQL and Redis against the strict sandbox."""

from __future__ import annotations

import pytest

from chains.models import Run
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_gitlab_chain import chain_done, describe_chains

pytestmark = [pytest.mark.e2e]

BATON_YML = """\
variables:
  RELEASE_STREAM: stable
downstream:
  - key: checks
    project: self
"""


def test_a_fork_mrs_self_target_runs_as_a_merge_request_pipeline(forges: Forges) -> None:
    forges.project("acme/app", {".baton.yml": BATON_YML, "README.md": "app"})
    forges.sandbox.create_project("bob/app", files={"README.md": "app"})  # bob's fork
    forges.person("bob", projects="acme/*", actions=["view", "trigger"])
    mr = forges.sandbox.open_merge_request(
        "acme/app",
        "fix",
        source_project="bob/app",
        title="Fix from a fork",
        author="bob",
        files={"app.py": "print('fixed')"},
    )
    assert mr["source_project_id"] != mr["target_project_id"]

    chain = eventually(chain_done, 40, "the chain to finish")
    run = Run.objects.get(chain=chain, key="checks")
    assert (run.status, chain.status, chain.from_fork) == ("success", "success", True), (
        describe_chains()
    )

    # One merge request pipeline, in the target project, on the MR's ref and head sha.
    (pipeline,) = forges.sandbox.pipelines("acme/app")
    assert pipeline["ref"] == "refs/merge-requests/1/head"
    assert pipeline["source"] == "merge_request_event"
    assert pipeline["sha"] == mr["sha"]
    assert pipeline["variables"] == []  # the endpoint takes none
    assert forges.sandbox.pipelines("bob/app") == []
    (created,) = forges.sandbox.requests(method="POST", path="/merge_requests/1/pipelines")
    assert created["status"] == 200
    posts = forges.sandbox.requests(method="POST")
    assert not [r for r in posts if r["path"].endswith("/pipeline")]  # no branch pipeline
    assert not [r for r in forges.sandbox.requests() if r["status"] == 400]  # no "not found"
    assert (run.ref, run.remote_id) == ("refs/merge-requests/1/head", str(pipeline["id"]))
    assert run.web_url == pipeline["web_url"]
    # What could not reach the pipeline is said, not claimed delivered.
    assert {"RELEASE_STREAM", "UPSTREAM_SHA", "BATON_RUN_ID"} <= set(run.undelivered)
    assert "BATON_RUN_NONCE" not in run.undelivered

    # Mirrored onto the fork's head commit in the target project, and in the summary note.
    final = {"baton/checks": "success", "baton": "success"}
    eventually(lambda: forges.statuses("acme/app", mr["sha"]) == final, 30, "the statuses")
    (note,) = [n for n in forges.notes("acme/app", 1) if "baton:summary" in n["body"]]
    assert "refs/merge-requests/1/head" in note["body"]
    assert "not delivered" in note["body"] and "RELEASE_STREAM" in note["body"]


def test_a_lost_answer_to_a_merge_request_pipeline_is_looked_up_not_resent(
    forges: Forges,
) -> None:
    """The pipeline carries no marker; Baton finds it by its ref, source and account."""
    forges.project("acme/app", {".baton.yml": BATON_YML, "README.md": "app"})
    forges.sandbox.add_fault(
        status=502, mode="after", count=1, method="POST", path=r"/merge_requests/1/pipelines$"
    )
    forges.sandbox.open_merge_request(
        "acme/app", "feature/x", author="alice", files={"app.py": "print('x')"}
    )
    chain = eventually(chain_done, 60, "the chain to finish")
    run = Run.objects.get(chain=chain, key="checks")
    assert run.status == "success", describe_chains()
    (pipeline,) = forges.sandbox.pipelines("acme/app")  # created once, adopted
    assert run.remote_id == str(pipeline["id"])
    posts = forges.sandbox.requests(method="POST", path="/merge_requests/1/pipelines")
    assert [r["status"] for r in posts] == [502]
    looked = forges.sandbox.requests(method="GET", path="/pipelines")
    assert any(r["query"].get("source") == "merge_request_event" for r in looked), looked
