"""Why a job failed, as the sandbox tells it: GitLab jobs carry the scripted ``failure_reason``
(one of GitLab's words), GitHub workflow runs list their jobs with steps and conclusions, and
every pipeline, job and workflow-run web URL the APIs hand out is a page with the log tail."""

from __future__ import annotations

from typing import Any

import gitlab
import pytest
import requests
from github import Github

from sandbox.client import SandboxClient, SandboxError, wait_until
from sandbox.server import SandboxServer
from tests.sandbox.github_schemas import require_specs, response_errors

WORKFLOW = (
    "name: Preview\nrun-name: Preview ${{ inputs.marker }}\n"
    "on:\n  workflow_dispatch:\n    inputs:\n      marker: {required: false}\n"
)
HOSTILE_LOG = "npm ERR! <script>alert(1)</script> & done\n"


def _page(url: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, timeout=5)


def _finished_pipeline(gl: gitlab.Gitlab, control: SandboxClient) -> Any:
    project = gl.projects.get("acme/api")
    pipeline = project.pipelines.create({"ref": "main"})
    wait_until(
        lambda: project.pipelines.get(pipeline.id).status in ("failed", "success"),
        what="pipeline end",
    )
    return project, project.pipelines.get(pipeline.id)


def test_a_failing_gitlab_job_carries_the_scripted_failure_reason(
    gl: gitlab.Gitlab, control: SandboxClient
) -> None:
    control.create_project("acme/api")
    control.set_script(
        "acme/api", "failed", failure_reason="stuck_or_timeout_failure", job="rspec", stage="qa"
    )
    project, pipeline = _finished_pipeline(gl, control)
    [job] = pipeline.jobs.list(scope="failed")
    assert (job.name, job.stage, job.status) == ("rspec", "qa", "failed")
    assert job.failure_reason == "stuck_or_timeout_failure"
    assert job.web_url == f"{project.web_url}/-/jobs/{job.id}"
    assert pipeline.jobs.list(scope="success") == []
    # A job that did not fail has no reason.
    control.set_script("acme/api", "success")
    _, green = _finished_pipeline(gl, control)
    [ok] = green.jobs.list()
    assert ok.status == "success" and ok.failure_reason is None


def test_the_default_reason_is_script_failure_and_unknown_reasons_are_refused(
    gl: gitlab.Gitlab, control: SandboxClient
) -> None:
    control.create_project("acme/api")
    control.set_script("acme/api", "failed")
    _, pipeline = _finished_pipeline(gl, control)
    [job] = pipeline.jobs.list(scope=["failed"])
    assert job.failure_reason == "script_failure"
    with pytest.raises(SandboxError, match="failure_reason"):
        control.set_script("acme/api", "failed", failure_reason="gremlins")


def test_gitlab_pipeline_and_job_web_urls_are_pages_with_the_log_tail(
    gl: gitlab.Gitlab, control: SandboxClient
) -> None:
    control.create_project("acme/api")
    control.set_script(
        "acme/api", "failed", failure_reason="runner_system_failure", log=HOSTILE_LOG
    )
    _, pipeline = _finished_pipeline(gl, control)
    [job] = pipeline.jobs.list()
    page = _page(pipeline.web_url)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert job.web_url in page.text  # the pipeline page links its job
    page = _page(job.web_url)
    assert page.status_code == 200 and "runner_system_failure" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; done" in page.text
    assert "<script>" not in page.text
    missing = pipeline.web_url.rsplit("/", 1)[0] + "/999999"
    assert _page(missing).status_code == 404


def _failed_run(gh: Github, control: SandboxClient, **script: Any) -> Any:
    control.create_github_repo("acme/web", files={".github/workflows/preview.yml": WORKFLOW})
    control.set_run_script("acme/web", **script)
    repo = gh.get_repo("acme/web")
    workflow = repo.get_workflow("preview.yml")
    assert workflow.create_dispatch("main", {"marker": "m1"})
    run = wait_until(lambda: list(repo.get_workflow_runs()), what="a run")[0]
    wait_until(lambda: repo.get_workflow_run(run.id).status == "completed", what="run end")
    return repo, repo.get_workflow_run(run.id)


def test_a_github_run_lists_its_jobs_with_the_failed_step(
    gh: Github, control: SandboxClient
) -> None:
    repo, run = _failed_run(gh, control, outcome="timed_out", job="build", step="Compile")
    [job] = list(run.jobs())
    assert (job.name, job.conclusion, job.status) == ("build", "timed_out", "completed")
    steps = {step.name: step.conclusion for step in job.steps}
    assert steps["Compile"] == "timed_out" and steps["Set up job"] == "success"
    assert job.html_url == f"{run.html_url}/job/{job.id}"
    assert job.run_id == run.id
    # A new attempt has a new job; the latest is listed.
    control.set_run_script("acme/web", "success")
    assert run.rerun()
    wait_until(lambda: repo.get_workflow_run(run.id).status == "completed", what="rerun end")
    [again] = list(repo.get_workflow_run(run.id).jobs())
    assert again.id != job.id and again.conclusion == "success"


def test_github_run_and_job_html_urls_are_pages_with_the_log_tail(
    gh: Github, control: SandboxClient
) -> None:
    _, run = _failed_run(gh, control, outcome="failure", step="Lint", log=HOSTILE_LOG)
    [job] = list(run.jobs())
    page = _page(run.html_url)
    assert page.status_code == 200 and job.html_url in page.text
    page = _page(job.html_url)
    assert page.status_code == 200 and "Lint" in page.text
    assert "&lt;script&gt;" in page.text and "<script>" not in page.text
    assert _page(f"{run.html_url}/job/{job.id + 1000}").status_code == 404


def test_the_jobs_answer_matches_the_openapi_description(
    forge: SandboxServer, gh: Github, control: SandboxClient
) -> None:
    require_specs()
    _, run = _failed_run(gh, control, outcome="failure")
    session = requests.Session()
    session.trust_env = False
    answer = session.get(
        f"{forge.url}/api/v3/repos/acme/web/actions/runs/{run.id}/jobs",
        headers={"Authorization": "token x"},
        timeout=5,
    )
    assert answer.status_code == 200
    template = "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
    assert response_errors(template, "GET", 200, answer.json()) == []
