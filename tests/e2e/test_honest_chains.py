"""End to end on the strict sandbox: cycles are refused by project before anything is sent
(A → B → A on the default branch; A → B → C → A across forges), and what Baton writes upstream
says what happened (a soft-failed run, nested runs with the same key, a re-run mode that found
an all-green pipeline)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from chains.models import Chain
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_chain_features import existing_pipeline
from tests.e2e.test_github_chain import WORKFLOW
from tests.e2e.test_gitlab_chain import chain_done, open_mr

pytestmark = [pytest.mark.e2e]


def latest_statuses(forges: Forges, project: str, sha: str) -> dict[str, dict[str, Any]]:
    """The newest status record for each name (GitLab keeps one per state it went through)."""
    items = forges.api(f"/projects/{quote(project, safe='')}/repository/commits/{sha}/statuses")
    newest: dict[str, dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: i["id"]):
        newest[item["name"]] = item
    return newest


def summary(forges: Forges) -> str:
    return next(n["body"] for n in forges.notes("acme/app", 1) if "baton:summary" in n["body"])


def test_a_loop_back_on_the_default_branch_is_refused_before_dispatch(forges: Forges) -> None:
    # acme/api's own file triggers acme/app on its default branch: not the change's ref, but
    # the same project, so it is refused before anything is sent.
    forges.project(
        "acme/api",
        {".baton.yml": "downstream:\n  - {key: back, project: acme/app, on: [upstream]}\n"},
    )
    open_mr(forges, "downstream: [{key: api, project: acme/api}]\n")
    chain = eventually(lambda: (c := chain_done()) and c.runs.count() == 2 and c, 60)
    back = chain.runs.get(key="back")
    assert back.status == "failed" and back.parent_id == chain.runs.get(key="api").pk
    assert back.error == "refused: this would trigger a cycle acme/app → acme/api → acme/app"
    assert forges.sandbox.pipelines("acme/app") == []  # no extra lap
    assert len(forges.sandbox.pipelines("acme/api")) == 1


def test_a_loop_through_two_forges_is_refused_with_its_path(forges: Forges) -> None:
    forges.repo(
        "acme/docs",
        {
            ".github/workflows/preview.yml": WORKFLOW,
            ".baton.yml": "downstream:\n  - {key: web, project: 'gitlab:acme/web', "
            "on: [upstream]}\n",
        },
    )
    forges.project(
        "acme/web",
        {".baton.yml": "downstream:\n  - {key: app, project: 'gitlab:acme/app', on: [upstream]}\n"},
    )
    open_mr(
        forges, "downstream: [{key: docs, project: 'github:acme/docs', workflow: preview.yml}]\n"
    )
    chain = eventually(lambda: (c := chain_done()) and c.runs.count() == 3 and c, 90)
    runs = {r.key: r for r in chain.runs.all()}
    assert (runs["docs"].status, runs["web"].status) == ("success", "success")
    assert runs["app"].status == "failed" and runs["app"].depth == 3
    assert runs["app"].error == (
        "refused: this would trigger a cycle gitlab:acme/app → github:acme/docs → "
        "gitlab:acme/web → gitlab:acme/app"
    )
    assert forges.sandbox.pipelines("acme/app") == []
    statuses = latest_statuses(forges, "acme/app", chain.head_sha)
    assert statuses["baton/docs/web/app"]["status"] == "failed"
    assert "this would trigger a cycle" in statuses["baton/docs/web/app"]["description"]


def test_soft_failed_and_nested_runs_say_what_happened_upstream(forges: Forges) -> None:
    nested = "downstream:\n  - {key: docs, project: acme/docs, on: [upstream]}\n"
    forges.project("acme/api", {".baton.yml": nested})
    forges.project("acme/web", {".baton.yml": nested})
    forges.project("acme/docs", queue=["failed", "success"])
    forges.project("acme/lint", outcome="failed")
    open_mr(
        forges,
        "downstream:\n  - {key: api, project: acme/api}\n  - {key: web, project: acme/web}\n"
        "  - {key: lint, project: acme/lint, soft_fail: true}\n",
    )
    chain: Chain = eventually(lambda: (c := chain_done()) and c.runs.count() == 5 and c, 90)
    assert chain.runs.get(key="lint").status == "failed"
    statuses = latest_statuses(forges, "acme/app", chain.head_sha)
    lint = statuses["baton/lint"]
    assert lint["status"] == "success"  # it never fails the chain …
    assert lint["description"] == "acme/lint: soft-failed (allowed to fail)"  # … nor hides
    namesakes = chain.runs.filter(key="docs").select_related("parent")
    docs = {r.parent.key if r.parent else "": r.status for r in namesakes}
    assert sorted(docs.values()) == ["failed", "success"]
    for parent, status in docs.items():  # two runs keyed docs, each with its own status
        assert statuses[f"baton/{parent}/docs"]["status"] == status
    assert "baton/docs" not in statuses
    assert statuses["baton"]["status"] == "failed"
    assert "1 soft-failed" in statuses["baton"]["description"]
    assert "⚠️ soft-failed (allowed to fail)" in summary(forges)


def test_rerun_last_successful_of_a_green_pipeline_says_it_reused_it(forges: Forges) -> None:
    forges.project("acme/api")
    green = existing_pipeline(forges, "acme/api")
    forges.sandbox.wait_for_pipeline("acme/api", green, timeout=10)
    open_mr(forges, "downstream: [{key: api, project: acme/api, mode: rerun-last-successful}]\n")
    run = eventually(chain_done, 40).runs.get()
    assert (run.status, run.remote_id) == ("success", str(green))
    assert run.error.startswith(f"reused pipeline #{green}: it had passed already")
    assert "nothing new was triggered" in run.error
    assert [p["id"] for p in forges.sandbox.pipelines("acme/api")] == [green]
    assert "UPSTREAM_REF" in run.variables and "UPSTREAM_REF" in run.undelivered
    sha = forges.sandbox.merge_request("acme/app", 1)["sha"]
    description = latest_statuses(forges, "acme/app", sha)["baton/api"]["description"]
    assert description.startswith(f"reused pipeline #{green}")
    assert "variables not sent: a re-run keeps the pipeline's own" in summary(forges)
