"""Flaky downstreams, end to end against the sandbox on both forges: a target scripted to fail
once (GitLab: runner_system_failure; GitHub: timed_out, named by GitLab's
stuck_or_timeout_failure in `when`) is retried automatically once its failed jobs are read, and
the chain ends green on attempt 2; a quarantined target that fails leaves the chain green, with
"quarantined: <reason>" in the summary comment and the ``baton/<key>`` status."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from chains.models import AuditEvent, Chain, Quarantine, Repository, Run
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_github_chain import WORKFLOW

pytestmark = [pytest.mark.e2e]


def _green_chain() -> Chain:
    return eventually(
        lambda: Chain.objects.filter(status="success").first(), 90, "the chain to end green"
    )


def _gitlab_summary(forges: Forges, iid: int, words: str) -> str:
    def found() -> str:
        notes = forges.notes("acme/app", iid)
        bodies = [n["body"] for n in notes if "baton:summary" in n["body"]]
        return bodies[0] if bodies and words in bodies[0] else ""

    return eventually(found, 30, f"the summary to say {words!r}")


def test_gitlab_runner_failure_is_retried_automatically(forges: Forges) -> None:
    forges.project(
        "acme/api",
        outcome="success",
        queue=["failed", "success"],
        job="build",
        failure_reason="runner_system_failure",
    )
    forges.project(
        "acme/app",
        {
            ".baton.yml": "downstream:\n  - key: api\n    project: acme/api\n"
            "    retry: {max: 2, when: [runner_system_failure]}\n"
        },
    )
    mr = forges.sandbox.open_merge_request(
        "acme/app", "feature/x", title="Add x", author="alice", files={"x.py": "1"}
    )
    chain = _green_chain()
    run = Run.objects.get(chain=chain, key="api")
    assert (run.status, run.attempt, run.retried_for) == ("success", 2, "runner_system_failure")
    assert run.attempts.get().status == "failed"
    event = AuditEvent.objects.get(action="run.retry")
    assert event.actor == "baton (automatic retry)"
    _gitlab_summary(forges, mr["iid"], "attempt 2 of 3, automatic retry: runner_system_failure")


def test_github_timeout_is_retried_automatically(forges: Forges) -> None:
    forges.repo(
        "acme/docs",
        {".github/workflows/preview.yml": WORKFLOW},
        outcome="success",
        queue=["timed_out", "success"],
    )
    forges.repo(
        "acme/app",
        {
            ".baton.yml": "downstream:\n  - key: docs\n    project: acme/docs\n"
            "    workflow: preview.yml\n    retry: {max: 1, when: stuck_or_timeout_failure}\n"
        },
    )
    forges.sandbox.open_pull_request(
        "acme/app", "feature/x", base="main", title="Add x", author="alice", files={"x": "1"}
    )
    chain = _green_chain()
    run = Run.objects.get(chain=chain, key="docs")
    assert (run.status, run.attempt, run.retried_for) == ("success", 2, "timed_out")

    def summary() -> str:
        comments = forges.github_api("/repos/acme/app/issues/1/comments")
        bodies = [c["body"] for c in comments if "baton:summary" in c["body"]]
        return bodies[0] if bodies and "attempt 2 of 2" in bodies[0] else ""

    body = eventually(summary, 30, "the summary to say attempt 2")
    assert "attempt 2 of 2, automatic retry: timed_out" in body


def test_a_quarantined_gitlab_target_that_fails_leaves_the_chain_green(forges: Forges) -> None:
    forges.project("acme/api", outcome="failed")
    forges.project("acme/app", {".baton.yml": "downstream: [{key: api, project: acme/api}]\n"})
    # The quarantine names the project record Baton keeps for acme/api (made here: not yet met).
    repository, _ = Repository.objects.get_or_create(forge=forges.forge, path="acme/api")
    Quarantine.objects.create(
        repository=repository,
        reason="runner upgrade",
        expires_at=timezone.now() + timedelta(days=1),
    )
    mr = forges.sandbox.open_merge_request(
        "acme/app", "feature/x", title="Add x", author="alice", files={"x.py": "1"}
    )
    chain = _green_chain()
    run = Run.objects.get(chain=chain, key="api")
    assert (run.status, run.quarantine_reason) == ("failed", "runner upgrade")
    _gitlab_summary(forges, mr["iid"], "quarantined: runner upgrade")

    def description() -> str:
        path = quote("acme/app", safe="")
        items = forges.api(f"/projects/{path}/repository/commits/{mr['sha']}/statuses")
        found = [i for i in items if i["name"] == "baton/api"]
        return found[0]["status"] + " " + (found[0]["description"] or "") if found else ""

    said = eventually(
        lambda: (lambda d: d if "quarantined" in d else "")(description()),
        30,
        "baton/api to say quarantined",
    )
    assert said.startswith("success ") and "quarantined: runner upgrade" in said


def test_a_quarantined_github_target_that_fails_leaves_the_chain_green(forges: Forges) -> None:
    forges.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW}, outcome="failure")
    forges.repo(
        "acme/app",
        {".baton.yml": "downstream: [{key: docs, project: acme/docs, workflow: preview.yml}]\n"},
    )
    repository, _ = Repository.objects.get_or_create(forge=forges.github_forge, path="acme/docs")
    Quarantine.objects.create(
        repository=repository,
        reason="runner upgrade",
        expires_at=timezone.now() + timedelta(days=1),
    )
    pr = forges.sandbox.open_pull_request(
        "acme/app", "feature/x", base="main", title="Add x", author="alice", files={"x": "1"}
    )
    chain = _green_chain()
    run = Run.objects.get(chain=chain, key="docs")
    assert (run.status, run.quarantine_reason) == ("failed", "runner upgrade")

    def status() -> str:
        statuses = forges.github_api(f"/repos/acme/app/commits/{pr['head']['sha']}/statuses")
        found = [s for s in statuses if s["context"] == "baton/docs"]
        text = f"{found[0]['state']} {found[0]['description']}" if found else ""
        return text if "quarantined" in text else ""

    said = eventually(status, 30, "baton/docs to say quarantined")
    assert said.startswith("success ") and "quarantined: runner upgrade" in said
