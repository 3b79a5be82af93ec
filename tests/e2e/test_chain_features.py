"""What `.baton.yml` can express, end to end: order, soft failure, nested chains across forges,
cycles refused before dispatch, detached edges, and what each strategy shows upstream."""

from __future__ import annotations

import pytest

from bots import services
from bots.engine.mirroring import view_of
from bots.forges.gitlab import COMMIT_STATE
from chains.models import Chain, Run
from chains.status import Status
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_github_chain import WORKFLOW
from tests.e2e.test_gitlab_chain import chain_done, open_mr

pytestmark = [pytest.mark.e2e]


def finished_runs(chain: Chain) -> dict[str, Run]:
    return {r.key: r for r in chain.runs.all()}


def after(later: Run, earlier: Run) -> bool:
    """``later`` was sent only once ``earlier`` had finished."""
    assert later.triggered_at is not None and earlier.finished_at is not None
    return later.triggered_at > earlier.finished_at


def test_depends_on_orders_runs_and_a_failure_skips_what_needs_it(forges: Forges) -> None:
    forges.project("acme/build", running=1.0)
    forges.project("acme/lint", outcome="failed")
    forges.project("acme/test")
    forges.project("acme/deploy")
    forges.project("acme/report")
    open_mr(
        forges,
        """\
downstream:
  - {key: build, project: acme/build}
  - {key: lint, project: acme/lint, soft_fail: true}
  - {key: test, project: acme/test, depends_on: [build, lint]}
  - {key: deploy, project: acme/deploy, depends_on: test}
  - {key: report, project: acme/report, depends_on: missing-ok, allow_dependency_failure: true}
  - {key: missing-ok, project: acme/ghost}
""",
    )
    chain = eventually(chain_done, 60)
    runs = finished_runs(chain)
    assert runs["build"].status == "success" and runs["lint"].status == "failed"
    # test waited for build (and the soft-failed lint counts as passed)
    assert runs["test"].status == "success"
    assert after(runs["test"], runs["build"])
    assert after(runs["deploy"], runs["test"])
    # report ran although what it depends on failed
    assert runs["missing-ok"].status == "failed" and runs["report"].status == "success"
    statuses = forges.statuses("acme/app", chain.head_sha)
    assert statuses["baton/lint"] == "success"  # soft fail: never fails the chain
    assert statuses["baton"] == "failed"  # acme/ghost does not exist


def test_a_failed_dependency_skips_its_dependents(forges: Forges) -> None:
    forges.project("acme/build", outcome="failed")
    forges.project("acme/deploy")
    open_mr(
        forges,
        "downstream:\n  - {key: build, project: acme/build}\n"
        "  - {key: deploy, project: acme/deploy, depends_on: build}\n",
    )
    chain = eventually(chain_done, 40)
    deploy = chain.runs.get(key="deploy")
    assert deploy.status == "skipped" and "build did not succeed" in deploy.error
    assert forges.sandbox.pipelines("acme/deploy") == []


def test_nested_chain_across_forges_and_a_refused_cycle(forges: Forges) -> None:
    # acme/app (GitLab MR) -> acme/api (GitLab) -> acme/docs (GitHub) ; acme/api -> acme/app is
    # a cycle and is refused before anything is sent.
    forges.project(
        "acme/api",
        {
            ".baton.yml": """\
downstream:
  - {key: docs, project: github:acme/docs, workflow: preview.yml, on: [upstream]}
  - {key: back, project: acme/app, ref: feature/x, on: [upstream]}
  - {key: not-now, project: acme/web, on: [merge_request]}
"""
        },
    )
    forges.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW})
    open_mr(forges, "downstream: [{key: api, project: acme/api}]\n")
    chain = eventually(lambda: (c := chain_done()) and c.runs.count() == 3 and c, 60)
    runs = finished_runs(chain)
    api, docs, back = runs["api"], runs["docs"], runs["back"]
    assert (docs.parent_id, docs.depth, docs.status) == (api.pk, 2, "success")
    assert docs.repository.forge.kind == "github"
    assert after(docs, api)
    (docs_run,) = forges.sandbox.workflow_runs("acme/docs")
    assert docs_run["inputs"]["UPSTREAM_PROJECT"] == "acme/api"
    assert back.status == "failed"
    assert back.error == "refused: this would trigger a cycle acme/app → acme/api → acme/app"
    assert [p["ref"] for p in forges.sandbox.pipelines("acme/app")] == []
    assert "not-now" not in runs


def test_cancel_propagates_down_edges_unless_detached(forges: Forges) -> None:
    forges.project(
        "acme/api",
        {
            ".baton.yml": """\
downstream:
  - {key: web, project: acme/web, on: [upstream]}
  - {key: audit, project: acme/audit, on: [upstream], cancel: detach}
"""
        },
        running=1.0,
    )
    forges.project("acme/web", running=60)
    forges.project("acme/audit", running=60)
    open_mr(forges, "downstream: [{key: api, project: acme/api}]\n")
    chain = eventually(
        lambda: (
            (c := Chain.objects.first())
            and c.runs.filter(status="running", depth=2).count() == 2
            and c
        ),
        60,
    )
    api = chain.runs.get(key="api")
    assert api.status == "success"
    # Canceling a run cancels what it set off, edge by edge.
    assert services.cancel_run(api, actor=services.Actor("rm", "dashboard")) is False
    eventually(lambda: chain.runs.get(key="web").status == "canceled", 30)
    assert chain.runs.get(key="audit").status == "running"


def test_a_new_commit_cancels_interruptible_runs_everywhere_but_leaves_detached_ones(
    forges: Forges,
) -> None:
    forges.project(
        "acme/api",
        {
            ".baton.yml": """\
downstream:
  - {key: web, project: acme/web, on: [upstream]}
  - {key: audit, project: acme/audit, on: [upstream], cancel: detach}
"""
        },
        running=1.0,
    )
    forges.project("acme/web", running=60)
    forges.project("acme/audit", running=60)
    forges.project("acme/svc", running=60)
    open_mr(forges, "downstream: [{key: api, project: acme/api}, {key: svc, project: acme/svc}]\n")
    first = eventually(
        lambda: (c := Chain.objects.first()) and c.runs.filter(status="running").count() == 3 and c,
        60,
    )
    forges.sandbox.push("acme/app", 1, {"b.py": "2"})
    eventually(lambda: first.runs.filter(status="canceled").count() == 2, 40)
    assert {r.key: r.status for r in first.runs.all()} == {
        "api": "success",
        "svc": "canceled",
        "web": "canceled",
        "audit": "running",
    }


def test_strategies_show_upstream_as_their_names_say(forges: Forges) -> None:
    forges.project("acme/dep", running=3.0)
    forges.project("acme/fire", running=3.0, outcome="failed")
    open_mr(
        forges,
        "downstream:\n  - {key: dep, project: acme/dep, strategy: depend}\n"
        "  - {key: fire, project: acme/fire, strategy: async}\n",
    )
    sha = forges.sandbox.merge_request("acme/app", 1)["sha"]
    # While both run: depend is running upstream, async is already green.
    eventually(lambda: forges.statuses("acme/app", sha).get("baton/fire") == "success", 30)
    eventually(lambda: forges.statuses("acme/app", sha).get("baton/dep") == "running", 30)
    chain = eventually(chain_done, 40)
    statuses = forges.statuses("acme/app", sha)
    assert statuses["baton/dep"] == "success"
    assert statuses["baton/fire"] == "success"  # fire and forget: its failure is not ours
    assert chain.runs.get(key="fire").status == "failed"  # but it is still tracked
    assert statuses["baton"] == "success"


def test_if_changes_and_params_file_read_through_the_forge(forges: Forges) -> None:
    forges.project("acme/docs")
    forges.project("acme/api")
    forges.project(
        "acme/app",
        {
            ".baton.yml": """\
downstream:
  - {key: docs, project: acme/docs, if: 'changes("docs/**")'}
  - {key: api, project: acme/api, params_file: ci/downstream.env,
     if: '"backend" in labels && target_branch == "main"'}
""",
            "ci/downstream.env": "# for the API\nexport IMAGE_TAG='v1.2'\nFEATURE=\"search x\"\n",
        },
    )
    forges.sandbox.open_merge_request(
        "acme/app",
        "feature/y",
        target_branch="main",
        title="Backend only",
        author="alice",
        files={"src/app.py": "1"},
        labels=["backend"],
    )
    chain = eventually(chain_done, 40)
    assert [r.key for r in chain.runs.all()] == ["api"]
    (variables,) = forges.pipeline_variables("acme/api")
    assert (variables["IMAGE_TAG"], variables["FEATURE"]) == ("v1.2", "search x")
    assert forges.sandbox.pipelines("acme/docs") == []
    forges.sandbox.push("acme/app", 1, {"docs/index.md": "# Docs"})
    newer = eventually(lambda: (c := chain_done()) and c.pk != chain.pk and c, 40)
    assert sorted(r.key for r in newer.runs.all()) == ["api", "docs"]


def existing_pipeline(forges: Forges, project: str, ref: str = "main") -> int:
    response = forges.http.post(
        f"{forges.api_url}/api/v4/projects/{project.replace('/', '%2F')}/pipeline",
        json={"ref": ref},
    )
    response.raise_for_status()
    return int(response.json()["id"])


def test_mode_rerun_latest_runs_the_newest_pipeline_again(forges: Forges) -> None:
    forges.project("acme/api", queue=["failed", "success"])
    old = existing_pipeline(forges, "acme/api")
    forges.sandbox.wait_for_pipeline("acme/api", old, timeout=10)
    open_mr(forges, "downstream: [{project: acme/api, mode: rerun-latest}]\n")
    chain = eventually(chain_done, 40)
    run = chain.runs.get()
    assert (run.status, run.remote_id) == ("success", str(old))
    assert [p["id"] for p in forges.sandbox.pipelines("acme/api")] == [old]  # none created
    assert len(forges.sandbox.requests(method="POST", path=f"/pipelines/{old}/retry")) == 1


def test_mode_rerun_without_a_pipeline_fails_in_words(forges: Forges) -> None:
    forges.project("acme/api")
    open_mr(forges, "downstream: [{project: acme/api, mode: rerun-last-successful}]\n")
    run = eventually(chain_done, 40).runs.get()
    assert run.status == "failed"
    assert run.error == (
        "mode rerun-last-successful: no successful pipeline on main in acme/api to re-run"
    )


def test_wait_lets_a_running_pipeline_finish_first(forges: Forges) -> None:
    forges.project("acme/api", running=3.0)
    busy = existing_pipeline(forges, "acme/api")
    forges.sandbox.wait_for_pipeline("acme/api", busy, statuses=("running",), timeout=10)
    open_mr(forges, "downstream: [{project: acme/api, wait: true, timeout: 30, deploy: staging}]\n")
    eventually(
        lambda: (
            (r := Run.objects.first())
            and r.status == "waiting"
            and "waiting for pipeline" in r.error
        ),
        20,
    )
    run = eventually(chain_done, 60).runs.get()
    assert run.status == "success"
    pipelines = {p["id"]: p for p in forges.sandbox.pipelines("acme/api")}
    mine = pipelines[int(run.remote_id)]
    assert mine["created_at"] >= pipelines[busy]["finished_at"]
    assert {v["key"]: v["value"] for v in mine["variables"]}["BATON_DEPLOY_ENVIRONMENT"] == (
        "staging"
    )


def test_wait_gives_up_after_its_timeout(forges: Forges) -> None:
    forges.project("acme/api", running=60.0)
    busy = existing_pipeline(forges, "acme/api")
    forges.sandbox.wait_for_pipeline("acme/api", busy, statuses=("running",), timeout=10)
    open_mr(forges, "downstream: [{project: acme/api, wait: true, timeout: 3}]\n")
    run = eventually(chain_done, 40).runs.get()
    assert run.status == "failed"
    assert run.error == f"timed out after 3 s waiting for pipeline {busy} on main to finish"
    assert len(forges.sandbox.pipelines("acme/api")) == 1


def _mirrored(run: Run) -> bool:
    """Baton has nothing left to post for ``run``: GitLab already shows its upstream view, or
    shows running, which a GitLab commit status cannot leave for pending."""
    shown = COMMIT_STATE.get(Status(run.mirrored_status)) if run.mirrored_status else None
    wanted = COMMIT_STATE[view_of(run)]
    return shown == wanted or (shown, wanted) == ("running", "pending")


def test_mirror_follows_manual_states_that_depend_waits_through(forges: Forges) -> None:
    forges.project("acme/dep", running=60)
    forges.project("acme/mir", running=60)
    open_mr(
        forges,
        "downstream:\n  - {key: dep, project: acme/dep, strategy: depend}\n"
        "  - {key: mir, project: acme/mir, strategy: mirror}\n",
    )
    chain = eventually(
        lambda: (c := Chain.objects.first()) and c.runs.filter(status="running").count() == 2 and c,
        40,
    )
    for run in chain.runs.all():
        forges.sandbox.finish_pipeline(run.repository.path, int(run.remote_id), "manual")
    eventually(lambda: set(chain.runs.values_list("status", flat=True)) == {"manual"}, 20)
    sha = chain.head_sha
    # Baton has mirrored the manual state of both: `depend` waits through it (running), `mirror`
    # shows it as pending - unless the forge already showed mir running, since a GitLab commit
    # status cannot go back from running to pending (app/models/commit_status.rb: `enqueue`
    # fires only from created, skipped or manual), and the sandbox is as strict.
    eventually(lambda: all(_mirrored(run) for run in chain.runs.all()), 20)
    statuses = forges.statuses("acme/app", sha)
    assert statuses["baton/dep"] == "running"
    assert statuses["baton/mir"] in ("pending", "running")
    for run in chain.runs.all():
        forges.sandbox.finish_pipeline(run.repository.path, int(run.remote_id), "success")
    eventually(lambda: forges.statuses("acme/app", sha).get("baton") == "success", 20)


def test_retry_a_subtree_runs_a_run_and_what_it_set_off_again(forges: Forges) -> None:
    forges.project(
        "acme/api", {".baton.yml": "downstream: [{key: web, project: acme/web, on: [upstream]}]\n"}
    )
    forges.project("acme/web")
    forges.project("acme/other")
    open_mr(
        forges, "downstream: [{key: api, project: acme/api}, {key: other, project: acme/other}]\n"
    )
    chain = eventually(lambda: (c := chain_done()) and c.runs.count() == 3 and c, 60)
    api = chain.runs.get(key="api")
    assert services.retry_subtree(api, actor=services.Actor("rm", "dashboard")) == 2
    eventually(lambda: chain.runs.filter(attempt=2, status="success").count() == 2, 60)
    assert len(forges.sandbox.pipelines("acme/api")) == 2
    assert len(forges.sandbox.pipelines("acme/web")) == 2
    assert len(forges.sandbox.pipelines("acme/other")) == 1  # not in the subtree
    web = chain.runs.get(key="web")
    assert web.attempts.get().status == "success" and web.triggered_at is not None
