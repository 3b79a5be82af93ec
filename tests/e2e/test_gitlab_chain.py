"""A GitLab merge request in the sandbox sets off downstream pipelines that Baton triggers,
tracks to the end and mirrors back, with a real worker, PostgreSQL and Redis."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from chains.models import Chain, Delivery, Run
from tests.e2e.conftest import HOOK_SECRET, Forges, Worker, eventually

pytestmark = [pytest.mark.e2e]

BATON_YML = """\
variables:
  RELEASE_STREAM: stable
  DEPLOY_TOKEN: {value: "hunter2-secret", masked: true}
downstream:
  - key: api
    project: acme/api
    variables: {ENVIRONMENT: staging}
  - key: web
    label: Web app
    project: acme/web
    ref: release/$RELEASE_STREAM
  - key: child
    project: self
    strategy: async
"""


def open_mr(forges: Forges, yml: str = BATON_YML, **mr: Any) -> dict[str, Any]:
    forges.project("acme/app", {".baton.yml": yml, "README.md": "app"})
    return forges.sandbox.open_merge_request(
        "acme/app",
        "feature/x",
        target_branch="main",
        title="Add x",
        author="alice",
        files={"app.py": "print('x')"},
        **mr,
    )


def describe_chains() -> str:
    """Where every chain stands, for a failing test's message."""
    return "; ".join(
        f"chain {c.pk} {c.status}: "
        + ", ".join(f"{r.key}={r.status} {r.error!r}" for r in c.runs.all())
        for c in Chain.objects.all()
    )


def chain_done(number: int = 1) -> Chain | None:
    return done(Chain.objects.filter(change_number=number, superseded_by__isnull=True).first())


def done(chain: Chain | None) -> Chain | None:
    """The chain when its runs are final and its upstream change shows it (mirrored)."""
    if (
        chain
        and chain.runs.exists()
        and not chain.runs.exclude(status__in=["success", "failed", "canceled", "skipped"]).exists()
    ):
        # The mirror fields are read after the runs: a run that ends asks for a mirror in the
        # same transaction, so a chain row read before the runs may not show that ask yet.
        chain.refresh_from_db(fields=["mirror_requested_at", "mirror_lease_until"])
        if chain.mirror_requested_at is None and chain.mirror_lease_until is None:
            return chain
    return None


def test_merge_request_triggers_tracks_and_mirrors(forges: Forges) -> None:
    forges.project("acme/api")
    web = forges.project("acme/web")
    forges.sandbox.commit(web["id"], {"x": "1"}, branch="release/stable")
    mr = open_mr(forges)
    sha = mr["sha"]

    chain = eventually(chain_done, 40, "the chain to finish")
    runs = {run.key: run for run in chain.runs.all()}
    assert {k: r.status for k, r in runs.items()} == {
        "api": "success",
        "web": "success",
        "child": "success",
    }
    assert chain.status == "success" and chain.head_sha == sha

    # Exactly one pipeline per target, with exactly the expected variables.
    upstream = {
        "UPSTREAM_REF": "refs/merge-requests/1/head",
        "UPSTREAM_PROJECT": "acme/app",
        "UPSTREAM_PROJECT_URL": f"{forges.api_url}/acme/app",
        "UPSTREAM_SHA": sha,
        "UPSTREAM_BRANCH": "feature/x",
        "UPSTREAM_TARGET_BRANCH": "main",
        "UPSTREAM_MR_IID": "1",
        "UPSTREAM_MR_URL": mr["web_url"],
        "BATON_CHAIN_ID": str(chain.pk),
        "BATON_DEPTH": "1",
        "RELEASE_STREAM": "stable",
        "DEPLOY_TOKEN": "hunter2-secret",
    }
    (api_vars,) = forges.pipeline_variables("acme/api")
    assert api_vars == {
        **upstream,
        "ENVIRONMENT": "staging",
        "BATON_RUN_ID": str(runs["api"].pk),
        "BATON_RUN_NONCE": runs["api"].nonce,
    }
    (web_vars,) = forges.pipeline_variables("acme/web")
    assert web_vars == {
        **upstream,
        "BATON_RUN_ID": str(runs["web"].pk),
        "BATON_RUN_NONCE": runs["web"].nonce,
    }
    (web_pipeline,) = forges.sandbox.pipelines("acme/web")
    assert web_pipeline["ref"] == "release/stable"
    # The pipeline hooks echo DEPLOY_TOKEN; no delivery keeps it (docs/security.md).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chains_delivery WHERE event = 'Pipeline Hook'")
        assert cursor.fetchone()[0] > 0
        cursor.execute("SELECT count(*) FROM chains_delivery WHERE payload::text LIKE '%hunter2%'")
        assert cursor.fetchone()[0] == 0
    # `project: self` is the MR's own merge request pipeline (tests/e2e/test_fork_mr_pipeline.py)
    child_pipelines = forges.sandbox.pipelines("acme/app")
    assert [(p["ref"], p["source"]) for p in child_pipelines] == [
        ("refs/merge-requests/1/head", "merge_request_event")
    ]
    assert runs["api"].web_url == forges.sandbox.pipelines("acme/api")[0]["web_url"]

    # Statuses and one summary note on the upstream change.
    statuses = forges.statuses("acme/app", sha)
    assert statuses == {
        "baton/api": "success",
        "baton/web": "success",
        "baton/child": "success",
        "baton": "success",
    }
    notes = [n for n in forges.notes("acme/app", 1) if "baton:summary" in n["body"]]
    assert len(notes) == 1
    body = notes[0]["body"]
    for text in ("acme/api", "acme/web", "Web app", "success", "/-/pipelines/"):
        assert text in body
    assert "hunter2" not in body
    # The note was edited in place as runs moved, not reposted.
    edits = forges.sandbox.requests(method="PUT", path="/notes/")
    assert edits, "the summary note is edited in place"
    assert len(forges.sandbox.requests(method="POST", path="/merge_requests/1/notes")) == 1

    # GitLab commit statuses are a state machine (the sandbox too): mirroring never posts a
    # state the forge already shows, so it never gets a 400 "Cannot transition status".
    posted = forges.sandbox.requests(method="POST", path="/statuses/")
    assert posted and [r["status"] for r in posted] == [201] * len(posted), posted
    assert not [r for r in forges.sandbox.requests() if r["status"] == 400]


def test_mirroring_never_repeats_a_state_gitlab_refuses(forges: Forges) -> None:
    """A run that waits (``depends_on``) and then is pending shows ``pending`` on GitLab both
    times: the second is not posted, and nothing is left unmirrored."""
    forges.project("acme/web", running=3.0)
    forges.project("acme/api")
    yml = (
        "downstream:\n"
        "  - {key: web, project: acme/web}\n"
        "  - {key: api, project: acme/api, depends_on: [web]}\n"
    )
    mr = open_mr(forges, yml)
    eventually(chain_done, 60, "the chain to finish")
    final = {"baton/web": "success", "baton/api": "success", "baton": "success"}
    eventually(lambda: forges.statuses("acme/app", mr["sha"]) == final, 30, "the last statuses")
    posted = forges.sandbox.requests(method="POST", path="/statuses/")
    assert [r["status"] for r in posted] == [201] * len(posted), posted
    states = [(r["body"]["name"], r["body"]["state"]) for r in posted]
    assert len(states) == len(set(states)), states  # no state posted twice for one name


def test_same_delivery_ten_times_gives_one_chain(forges: Forges) -> None:
    forges.project("acme/api")
    forges.sandbox.add_fault(mode="drop_webhooks", event="Merge Request Hook")
    open_mr(forges, "downstream: [{project: acme/api}]\n")
    (sent,) = eventually(lambda: forges.sandbox.webhooks(event="Merge Request Hook"), 10)
    forges.sandbox.clear_faults()
    headers = {k: v for k, v in sent["headers"].items() if k.lower() != "content-length"}
    headers["X-Gitlab-Token"] = HOOK_SECRET
    body = json.dumps(sent["payload"])

    def deliver(_: int) -> int:
        return requests.post(forges.hook_url, data=body, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(deliver, range(5)))
    codes += [deliver(i) for i in range(5)]
    assert codes == [202] * 10
    eventually(chain_done, 30, "the chain to finish")
    assert Delivery.objects.filter(event="Merge Request Hook").count() == 1
    assert Chain.objects.count() == 1
    assert len(forges.sandbox.pipelines("acme/api")) == 1


def test_new_commit_supersedes_and_cancels(forges: Forges) -> None:
    forges.project("acme/api", running=60)
    forges.project("acme/keep", running=60)
    yml = "downstream:\n  - {project: acme/api}\n  - {project: acme/keep, interruptible: false}\n"
    mr = open_mr(forges, yml)
    first = eventually(
        lambda: (
            Chain.objects.filter(runs__status="running").distinct().count() and Chain.objects.get()
        ),
        30,
        "runs to start",
    )
    eventually(lambda: first.runs.filter(status="running").count() == 2, 30)

    new_sha = forges.sandbox.push("acme/app", 1, {"app.py": "print('y')"})
    assert new_sha != mr["sha"]
    second = eventually(lambda: Chain.objects.filter(head_sha=new_sha).first(), 30)
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk

    old_api = first.runs.get(key="api")
    eventually(lambda: Run.objects.get(pk=old_api.pk).status == "canceled", 30, "the cancel")
    statuses = {p["id"]: p["status"] for p in forges.sandbox.pipelines("acme/api")}
    assert statuses[int(old_api.remote_id)] == "canceled"
    # Not interruptible: left running.
    assert first.runs.get(key="keep").status == "running"
    eventually(lambda: second.runs.filter(status="running").count() == 2, 30)
    assert sorted(p["status"] for p in forges.sandbox.pipelines("acme/keep")) == [
        "running",
        "running",
    ]
    eventually(lambda: forges.statuses("acme/app", mr["sha"]).get("baton/api") == "canceled", 30)


def test_a_burst_of_429s_ends_with_every_target_triggered_once(forges: Forges) -> None:
    keys = [f"t{i}" for i in range(6)]
    for key in keys:
        forges.project(f"acme/{key}")
    forges.sandbox.add_fault(
        status=429, retry_after=1, rate=1.0, count=10, method="POST", path=r"/pipeline$"
    )
    yml = "downstream:\n" + "".join(f"  - {{project: acme/{k}}}\n" for k in keys)
    open_mr(forges, yml)
    chain = eventually(chain_done, 60, "every target to finish")
    assert set(chain.runs.values_list("status", flat=True)) == {"success"}
    throttled = [r for r in forges.sandbox.requests(method="POST") if r["status"] == 429]
    assert len(throttled) == 10
    for key in keys:
        assert len(forges.sandbox.pipelines(f"acme/{key}")) == 1, key


def test_uncertain_creates_are_looked_up_not_resent(forges: Forges) -> None:
    keys = [f"u{i}" for i in range(4)]
    for key in keys:
        forges.project(f"acme/{key}")
    # The forge creates the pipeline and then answers 502 / drops the connection.
    forges.sandbox.add_fault(
        status=502, mode="after", rate=1.0, count=2, method="POST", path=r"/pipeline$"
    )
    forges.sandbox.add_fault(
        mode="drop_after", rate=1.0, count=2, method="POST", path=r"/pipeline$"
    )
    yml = "downstream:\n" + "".join(f"  - {{project: acme/{k}}}\n" for k in keys)
    open_mr(forges, yml)
    chain = eventually(chain_done, 60, "every target to finish")
    assert set(chain.runs.values_list("status", flat=True)) == {"success"}
    for key in keys:
        assert len(forges.sandbox.pipelines(f"acme/{key}")) == 1, key


def test_worker_killed_mid_fanout_triggers_each_target_once(forges: Forges, worker: Worker) -> None:
    keys = [f"k{i:02d}" for i in range(20)]
    for key in keys:
        forges.project(f"acme/{key}")
    forges.sandbox.add_fault(latency=0.4, method="POST", path=r"/pipeline$")
    yml = "downstream:\n" + "".join(f"  - {{project: acme/{k}}}\n" for k in keys)
    open_mr(forges, yml)
    eventually(
        lambda: len(forges.sandbox.requests(method="POST", path="/pipeline")) >= 4,
        30,
        "the fan-out to be under way",
    )
    worker.kill()
    sent_before = len(forges.sandbox.requests(method="POST", path="/pipeline"))
    assert sent_before < 20, "the kill came after the fan-out"
    worker.start()
    chain = eventually(chain_done, 90, "every target to finish after the restart")
    assert set(chain.runs.values_list("status", flat=True)) == {"success"}
    for key in keys:
        assert len(forges.sandbox.pipelines(f"acme/{key}")) == 1, key


def test_lost_pipeline_webhooks_are_made_up_by_polling(forges: Forges) -> None:
    forges.project("acme/api")
    forges.sandbox.add_fault(mode="drop_webhooks", event="Pipeline Hook")
    open_mr(forges, "downstream: [{project: acme/api}]\n")
    chain = eventually(chain_done, 60, "the run to finish through polling")
    assert chain.runs.get().status == "success"
    # Polled as a repository (one list of its pipelines), not pipeline by pipeline.
    gets = [r["path"] for r in forges.sandbox.requests(method="GET", path="/pipelines")]
    assert [p for p in gets if p.endswith("/pipelines")], gets
    assert not [p for p in gets if re.search(r"/pipelines/[0-9]+$", p)], gets


def test_invalid_config_fails_the_chain_with_line_and_field(forges: Forges) -> None:
    mr = open_mr(forges, "downstream:\n  - project: acme/api\n    strategy: sometimes\n")
    chain = eventually(lambda: Chain.objects.filter(summary_digest__gt="").first(), 30)
    assert chain.status == "failed"
    assert "line 3" in chain.error and "downstream[0].strategy" in chain.error
    (note,) = [n for n in forges.notes("acme/app", 1) if "baton:summary" in n["body"]]
    assert "line 3" in note["body"]
    assert forges.statuses("acme/app", mr["sha"]) == {"baton": "failed"}


def test_unknown_project_fails_only_that_run_in_words(forges: Forges) -> None:
    forges.project("acme/api")
    open_mr(forges, "downstream:\n  - {project: acme/api}\n  - {project: acme/ghost}\n")
    chain = eventually(chain_done, 40)
    runs = {run.key: run for run in chain.runs.all()}
    assert runs["api"].status == "success"
    assert runs["ghost"].status == "failed"
    assert "404" in runs["ghost"].error and "acme/ghost" in runs["ghost"].error
    assert chain.status == "failed"
