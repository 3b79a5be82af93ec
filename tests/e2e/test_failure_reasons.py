"""Why a run failed, end to end: a downstream pipeline (GitLab) or workflow run (GitHub) fails on
the sandbox with a scripted reason; Baton reads its failed jobs with one extra request and shows
them on the chain page (in Chromium), in the summary comment and in the ``baton/<key>`` status;
the job link it shows is the sandbox's job page with the log tail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from django.contrib.auth.models import User

from chains import failures
from chains.models import Chain, Run
from tests.e2e.conftest import Forges, eventually
from tests.e2e.dashboard_browser import chromium, require_browser, sign_in
from tests.e2e.test_github_chain import WORKFLOW

pytestmark = [pytest.mark.e2e]
PASSWORD = "e2e-password-1"
LOG = "FAIL spec/models/user_spec.rb:12 <expected 1, got 2>\n"


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    require_browser()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium(viewport={"width": 1280, "height": 900}) as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page


@pytest.fixture
def manager(forges: Forges) -> User:
    return forges.person("rita", everything=True, password=PASSWORD)


def _explained(key: str) -> Run:
    """The run ``key`` once it failed and its failed jobs were read."""

    def check() -> Run | None:
        run = Run.objects.filter(key=key, status="failed").first()
        return run if run is not None and failures.shown(run) else None

    return eventually(check, 60, f"run {key} to fail with its reasons")


def _page(url: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, timeout=5)


def _reason_on_the_chain_page(page: Any, base_url: str, run: Run) -> Any:
    sign_in(page, base_url, "rita", PASSWORD)
    page.goto(f"{base_url}/chains/{run.chain_id}/")
    row = page.locator(f'tr.run[data-key="{run.key}"]')
    assert row.get_attribute("data-status") == "failed"
    return row.locator("li.failed-job").first


def test_a_failed_gitlab_pipeline_says_which_job_failed_and_why(
    forges: Forges, manager: User, browser_page: Any, live_server: Any
) -> None:
    forges.project(
        "acme/api",
        outcome="failed",
        job="rspec",
        stage="test",
        failure_reason="stuck_or_timeout_failure",
        log=LOG,
    )
    forges.project("acme/app", {".baton.yml": "downstream: [{key: api, project: acme/api}]\n"})
    mr = forges.sandbox.open_merge_request(
        "acme/app", "feature/x", title="Add x", author="alice", files={"x.py": "1"}
    )
    run = _explained("api")
    [job] = failures.shown(run)
    assert (job.name, job.stage, job.reason) == ("rspec", "test", "stuck_or_timeout_failure")

    # The chain page, in a browser: the job, its stage and GitLab's reason, linked to its page.
    item = _reason_on_the_chain_page(browser_page, live_server.url, run)
    assert item.get_attribute("data-reason") == "stuck_or_timeout_failure"
    text = item.inner_text()
    assert "rspec" in text and "(test)" in text and "stuck or timeout failure" in text
    href = item.locator("a").get_attribute("href")
    assert href == job.url
    # The link leads to the sandbox's job page with the log tail (no longer a 404).
    answer = _page(href)
    assert answer.status_code == 200
    assert "FAIL spec/models/user_spec.rb:12 &lt;expected 1, got 2&gt;" in answer.text
    assert _page(run.web_url).status_code == 200  # the pipeline link too

    # The summary comment and the baton/api status say it as well.
    def summary() -> str:
        notes = forges.notes("acme/app", mr["iid"])
        bodies = [n["body"] for n in notes if "baton:summary" in n["body"]]
        return bodies[0] if bodies and "rspec" in bodies[0] else ""

    body = eventually(summary, 30, "the summary to name the failed job")
    assert "rspec (stuck or timeout failure)" in body

    def description() -> str:
        path = quote("acme/app", safe="")
        items = forges.api(f"/projects/{path}/repository/commits/{mr['sha']}/statuses")
        found = [i["description"] for i in items if i["name"] == "baton/api"]
        return found[0] if found and "rspec" in (found[0] or "") else ""

    said = eventually(description, 30, "baton/api to say why")
    assert said == "failed: rspec (stuck or timeout failure)"
    chain = Chain.objects.get(pk=run.chain_id)
    assert chain.status == "failed"


def test_a_failed_github_workflow_run_says_which_job_and_step_failed(
    forges: Forges, manager: User, browser_page: Any, live_server: Any
) -> None:
    forges.repo(
        "acme/docs",
        {".github/workflows/preview.yml": WORKFLOW},
        outcome="timed_out",
        job="build-docs",
        step="Run sphinx",
        log=LOG,
    )
    forges.repo(
        "acme/app",
        {".baton.yml": "downstream: [{key: docs, project: acme/docs, workflow: preview.yml}]\n"},
    )
    pr = forges.sandbox.open_pull_request(
        "acme/app", "feature/x", base="main", title="Add x", author="alice", files={"x": "1"}
    )
    run = _explained("docs")
    [job] = failures.shown(run)
    assert (job.name, job.step, job.reason) == ("build-docs", "Run sphinx", "timed_out")

    item = _reason_on_the_chain_page(browser_page, live_server.url, run)
    text = item.inner_text()
    assert "build-docs" in text and "Run sphinx" in text and "timed out" in text
    href = item.locator("a").get_attribute("href")
    assert href == job.url and _page(href).status_code == 200
    assert "&lt;expected 1, got 2&gt;" in _page(href).text
    assert _page(run.web_url).status_code == 200  # the workflow run's link too

    def summary() -> str:
        comments = forges.github_api("/repos/acme/app/issues/1/comments")
        bodies = [c["body"] for c in comments if "baton:summary" in c["body"]]
        return bodies[0] if bodies and "build-docs" in bodies[0] else ""

    body = eventually(summary, 30, "the summary to name the failed job")
    assert "build-docs / Run sphinx (timed out)" in body

    def description() -> str:
        sha = pr["head"]["sha"]
        statuses = forges.github_api(f"/repos/acme/app/commits/{sha}/statuses")
        found = [s["description"] for s in statuses if s["context"] == "baton/docs"]
        return found[0] if found and "build-docs" in (found[0] or "") else ""

    said = eventually(description, 30, "baton/docs to say why")
    assert said == "failed: build-docs / Run sphinx (timed out)" and len(said) <= 140
