"""A GitHub pull request in the sandbox triggers GitHub workflows and a GitLab pipeline in one
chain; statuses and one comment go back on the pull request."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import requests

from chains.models import Chain, Delivery, Run
from tests.e2e.conftest import HOOK_SECRET, Forges, eventually
from tests.e2e.test_gitlab_chain import chain_done

pytestmark = [pytest.mark.e2e]

WORKFLOW = """\
name: Preview
run-name: "Preview (baton run ${{ inputs.BATON_RUN_ID }} ${{ inputs.BATON_RUN_NONCE }})"
on:
  workflow_dispatch:
    inputs:
      UPSTREAM_REF: {required: false}
      UPSTREAM_SHA: {required: false}
      UPSTREAM_PROJECT: {required: false}
      BATON_RUN_ID: {required: false}
      BATON_RUN_NONCE: {required: false}
      ENVIRONMENT: {required: false}
jobs:
  preview: {runs-on: ubuntu-latest, steps: [{run: echo preview}]}
"""
DISPATCHED = """\
name: On dispatch
run-name: "Baton ${{ github.event.client_payload.BATON_RUN_NONCE }}"
on: {repository_dispatch: {types: [baton]}}
jobs:
  go: {runs-on: ubuntu-latest, steps: [{run: echo go}]}
"""
BATON_YML = """\
variables:
  RELEASE_STREAM: stable
downstream:
  - key: docs
    project: acme/docs
    workflow: preview.yml
    variables: {ENVIRONMENT: staging}
  - key: site
    project: acme/site
    workflow: preview.yml
  - key: api
    project: gitlab:acme/api
"""


def open_pr(forges: Forges, yml: str = BATON_YML) -> dict[str, Any]:
    forges.repo("acme/app", {".baton.yml": yml})
    return forges.sandbox.open_pull_request(
        "acme/app",
        "feature/x",
        base="main",
        title="Add x",
        author="alice",
        files={"x.py": "x = 1\n"},
    )


def workflows(forges: Forges, *names: str) -> None:
    for name in names:
        forges.repo(
            name,
            {
                ".github/workflows/preview.yml": WORKFLOW,
                ".github/workflows/dispatched.yml": DISPATCHED,
            },
        )


def test_pull_request_triggers_workflows_and_a_gitlab_pipeline(forges: Forges) -> None:
    workflows(forges, "acme/docs", "acme/site")
    forges.project("acme/api")
    pr = open_pr(forges)
    sha = pr["head"]["sha"]
    chain = eventually(chain_done, 60, "the chain to finish")
    runs = {run.key: run for run in chain.runs.all()}
    assert {k: r.status for k, r in runs.items()} == {
        "docs": "success",
        "site": "success",
        "api": "success",
    }
    (docs_run,) = forges.sandbox.workflow_runs("acme/docs")
    assert docs_run["inputs"] == {
        "UPSTREAM_REF": "refs/pull/1/head",
        "UPSTREAM_SHA": sha,
        "UPSTREAM_PROJECT": "acme/app",
        "BATON_RUN_ID": str(runs["docs"].pk),
        "BATON_RUN_NONCE": runs["docs"].nonce,
        "ENVIRONMENT": "staging",
    }
    assert "RELEASE_STREAM" in runs["docs"].undelivered  # not a declared input: reported
    assert runs["docs"].remote_id == str(docs_run["id"])
    (api_vars,) = forges.pipeline_variables("acme/api")
    assert api_vars["UPSTREAM_REF"] == "refs/pull/1/head"
    assert api_vars["UPSTREAM_PROJECT"] == "acme/app"
    assert api_vars["RELEASE_STREAM"] == "stable"
    assert api_vars["BATON_RUN_ID"] == str(runs["api"].pk)

    statuses = forges.github_api(f"/repos/acme/app/commits/{sha}/status")
    states = {s["context"]: s["state"] for s in statuses["statuses"]}
    # acme/api is a private GitLab project: the public repository's statuses do not name it.
    assert states == {
        "baton/docs": "success",
        "baton/site": "success",
        "baton/private-1": "success",
        "baton": "success",
    }
    comments = [
        c
        for c in forges.github_api("/repos/acme/app/issues/1/comments")
        if "baton:summary" in c["body"]
    ]
    assert len(comments) == 1
    assert "not delivered" in comments[0]["body"] and "RELEASE_STREAM" in comments[0]["body"]
    assert "acme/api" not in comments[0]["body"] and "a private project" in comments[0]["body"]


def test_a_redelivered_pull_request_event_is_ignored(forges: Forges) -> None:
    workflows(forges, "acme/docs")
    open_pr(forges, "downstream: [{project: acme/docs, workflow: preview.yml}]\n")
    eventually(chain_done, 40)
    (sent,) = [
        w
        for w in forges.sandbox.webhooks(event="pull_request")
        if w.get("url", "").endswith("/hooks/github/")
    ]
    forges.sandbox.redeliver(sent["delivery"])
    body = json.dumps(sent["payload"]).encode()
    import hashlib
    import hmac

    signature = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": sent["delivery"],
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }
    assert (
        requests.post(forges.github_hook_url, data=body, headers=headers, timeout=10).status_code
        == 202
    )
    eventually(lambda: len(forges.sandbox.webhooks(event="pull_request")) >= 2, 10)
    assert Delivery.objects.filter(event="pull_request").count() == 1
    assert Chain.objects.count() == 1
    assert len(forges.sandbox.workflow_runs("acme/docs")) == 1


def test_synchronize_supersedes_and_cancels_across_forges(forges: Forges) -> None:
    workflows(forges, "acme/docs")
    forges.sandbox.set_run_script("acme/docs", running=60)
    forges.project("acme/api", running=60)
    open_pr(
        forges,
        "downstream:\n  - {project: acme/docs, workflow: preview.yml}\n"
        "  - {project: gitlab:acme/api}\n",
    )
    first = eventually(
        lambda: (c := Chain.objects.first()) and c.runs.filter(status="running").count() == 2 and c,
        40,
    )
    new_sha = forges.sandbox.push_pull_request("acme/app", 1, {"x.py": "x = 2\n"})
    second = eventually(lambda: Chain.objects.filter(head_sha=new_sha).first(), 30)
    eventually(lambda: set(first.runs.values_list("status", flat=True)) == {"canceled"}, 40)
    docs_runs = sorted(forges.sandbox.workflow_runs("acme/docs"), key=lambda r: r["id"])
    assert docs_runs[0]["conclusion"] == "cancelled"
    old_api = first.runs.get(key="api")
    statuses = {str(p["id"]): p["status"] for p in forges.sandbox.pipelines("acme/api")}
    assert statuses[old_api.remote_id] == "canceled"
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk


def test_correlation_falls_back_to_the_marker_when_run_details_are_refused(forges: Forges) -> None:
    forges.sandbox.github_settings(return_run_details=False)
    workflows(forges, "acme/docs", "acme/site")
    open_pr(
        forges,
        "downstream:\n  - {project: acme/docs, workflow: preview.yml}\n  - {project: acme/site}\n",
    )  # repository_dispatch
    chain = eventually(chain_done, 60, "both runs to be found and finish")
    for run in chain.runs.all():
        assert run.status == "success"
        (remote,) = forges.sandbox.workflow_runs(run.repository.path)
        assert run.remote_id == str(remote["id"])
        assert run.nonce in remote["display_title"]
    site_run = forges.sandbox.workflow_runs("acme/site")[0]
    assert site_run["client_payload"]["BATON_RUN_ID"] == str(chain.runs.get(key="site").pk)
    dispatches = forges.sandbox.requests(method="POST", path="/dispatches")
    assert sum("return_run_details" in (r.get("body") or {}) for r in dispatches) == 1


FAN_OUT = 20


def test_fan_out_keeps_a_second_between_writes_and_survives_secondary_limits(
    forges: Forges,
) -> None:
    # More targets than the worker has threads (8), so that they contend for the write budget;
    # each takes a second, so no more than that.
    names = [f"acme/fan{i:02d}" for i in range(FAN_OUT)]
    for name in names:
        forges.repo(name, {".github/workflows/dispatched.yml": DISPATCHED})
    forges.sandbox.add_fault(
        rate_limit="secondary",
        status=403,
        retry_after=2,
        count=3,
        method="POST",
        path="/dispatches",
    )
    yml = "downstream:\n" + "".join(f"  - {{project: {n}, strategy: async}}\n" for n in names)
    open_pr(forges, yml)
    chain = eventually(
        lambda: (
            (c := Chain.objects.first())
            and not c.runs.filter(status__in=["queued", "waiting"]).exists()
            and c
        ),
        200,
        "every dispatch to go out",
    )
    assert chain.runs.count() == FAN_OUT
    sent = sorted(
        r["time"]
        for r in forges.sandbox.requests(method="POST", path="/dispatches")
        if r["status"] == 204
    )
    assert len(sent) == FAN_OUT
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.9, f"writes closer than 1 s: {min(gaps):.3f}"
    refused = [
        r for r in forges.sandbox.requests(method="POST", path="/dispatches") if r["status"] == 403
    ]
    assert len(refused) == 3
    for name in names:
        assert len(forges.sandbox.workflow_runs(name)) == 1, name
    assert Run.objects.filter(chain=chain, status="waiting").count() == 0


DEPLOYED = (
    (
        "name: Deploy\n"
        'run-name: "Deploy ${{ github.event.deployment.payload.BATON_RUN_NONCE }} to '
        '${{ github.event.deployment.environment }}"\n'
    )
    + """\
on: [deployment]
jobs:
  go: {runs-on: ubuntu-latest, steps: [{run: echo deploy}]}
"""
)


def test_deploy_goes_through_the_deployments_api(forges: Forges) -> None:
    forges.repo("acme/site", {".github/workflows/deploy.yml": DEPLOYED})
    open_pr(forges, "downstream: [{key: site, project: acme/site, deploy: staging}]\n")
    chain = eventually(chain_done, 60, "the deployment run to finish")
    run = chain.runs.get()
    assert run.status == "success"
    (remote,) = forges.sandbox.workflow_runs("acme/site")
    assert remote["event"] == "deployment"
    assert remote["display_title"] == f"Deploy {run.nonce} to staging"
    assert run.remote_id == str(remote["id"])
    assert remote["deployment_payload"]["variables"]["BATON_DEPLOY_ENVIRONMENT"] == "staging"


def test_deploy_needs_the_deploy_permission(forges: Forges) -> None:
    from chains.models import Grant

    Grant.objects.filter(user__username="alice").update(actions=["view", "trigger"])
    forges.repo("acme/site", {".github/workflows/deploy.yml": DEPLOYED})
    open_pr(forges, "downstream: [{key: site, project: acme/site, deploy: production}]\n")
    run = eventually(chain_done, 40).runs.get()
    assert run.status == "failed"
    assert run.error == "alice may not deploy acme/site: no grant gives alice deploy on acme/site"
    assert forges.sandbox.workflow_runs("acme/site") == []
