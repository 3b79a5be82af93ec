"""The domain verbs against the sandbox: retry keeps earlier attempts, cancel reaches the forge,
re-run plans the change again on its latest commit."""

from __future__ import annotations

import pytest

from bots import services
from chains.models import AuditEvent, Chain, Run
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_gitlab_chain import chain_done, open_mr

pytestmark = [pytest.mark.e2e]

ALICE = services.Actor("alice", "dashboard", remote_addr="127.0.0.1")


def test_retry_a_failed_run_keeps_its_earlier_attempt(forges: Forges) -> None:
    forges.project("acme/api", queue=["failed", "success"])
    open_mr(forges, "downstream: [{project: acme/api}]\n")
    chain = eventually(chain_done, 40)
    run = chain.runs.get()
    assert run.status == "failed"
    assert forges.statuses("acme/app", chain.head_sha)["baton"] == "failed"

    services.retry_run(run, actor=ALICE)
    with pytest.raises(services.ActionRefused):
        services.retry_run(Run.objects.get(pk=run.pk), actor=ALICE)  # a double click
    eventually(lambda: Run.objects.get(pk=run.pk).status == "success", 40)
    run.refresh_from_db()
    assert run.attempt == 2
    (first,) = run.attempts.all()
    assert (first.number, first.status, first.remote_id) == (1, "failed", run.remote_id)
    assert len(forges.sandbox.requests(method="POST", path="/retry")) == 1
    eventually(lambda: forges.statuses("acme/app", chain.head_sha)["baton"] == "success", 20)
    audit = AuditEvent.objects.get(action="run.retry")
    assert (audit.actor, audit.surface, audit.remote_addr) == ("alice", "dashboard", "127.0.0.1")


def test_cancel_a_chain_reaches_every_running_pipeline(forges: Forges) -> None:
    forges.project("acme/api", running=60)
    forges.project("acme/web", running=60)
    open_mr(forges, "downstream: [{project: acme/api}, {project: acme/web}]\n")
    chain = eventually(
        lambda: (c := Chain.objects.first()) and c.runs.filter(status="running").count() == 2 and c
    )
    assert services.cancel_chain(chain, actor=ALICE) == 2
    assert services.cancel_chain(chain, actor=ALICE) == 0  # nothing more to cancel
    eventually(lambda: set(chain.runs.values_list("status", flat=True)) == {"canceled"}, 30)
    for project in ("acme/api", "acme/web"):
        assert [p["status"] for p in forges.sandbox.pipelines(project)] == ["canceled"]
    assert len(forges.sandbox.requests(method="POST", path="/cancel")) == 2


def test_rerun_plans_the_change_again_on_its_latest_commit(forges: Forges) -> None:
    forges.project("acme/api")
    open_mr(forges, "downstream: [{project: acme/api}]\n")
    first = eventually(chain_done, 40)
    # A commit Baton does not hear about (its webhook is lost) ...
    forges.sandbox.add_fault(mode="drop_webhooks", event="Merge Request Hook")
    new_sha = forges.sandbox.push("acme/app", 1, {"b.py": "2"})
    # ... is picked up when someone re-runs the chain.
    services.rerun_chain(first, actor=ALICE)
    second = eventually(lambda: Chain.objects.filter(head_sha=new_sha).first(), 30)
    assert second.reason == "re-run by alice"
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk
    eventually(lambda: chain_done() == second, 40)
    assert len(forges.sandbox.pipelines("acme/api")) == 2
