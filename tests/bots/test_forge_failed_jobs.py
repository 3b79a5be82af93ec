"""``Forge.failed_jobs``: both adapters name a failed pipeline's failed jobs in neutral words
with one request — against the sandbox (the real python-gitlab and PyGithub on the wire) and
against recorded answers for what the sandbox does not make (allowed failures, odd shapes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from bots.forges.base import FailedJob, ForgeError
from bots.forges.github import GitHubForge
from bots.forges.gitlab import GitLabForge
from sandbox.client import SandboxClient, wait_until
from sandbox.server import SandboxServer, serve_in_thread

WORKFLOW = (
    "name: Preview\nrun-name: Preview ${{ inputs.marker }}\n"
    "on:\n  workflow_dispatch:\n    inputs:\n      marker: {required: false}\n"
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = serve_in_thread(port=0, time_scale=20.0)
    yield server
    server.shutdown()


@pytest.fixture
def control(sandbox: SandboxServer) -> SandboxClient:
    client = SandboxClient(sandbox.url)
    client.reset()
    return client


def test_gitlab_names_failed_jobs_with_stage_reason_and_link(
    sandbox: SandboxServer, control: SandboxClient
) -> None:
    control.create_project("acme/api")
    control.set_script("acme/api", "failed", job="rspec", stage="qa", failure_reason="api_failure")
    forge = GitLabForge(sandbox.url, "tok", timeout=5)
    remote = forge.create_pipeline("acme/api", "main", {})
    wait_until(lambda: forge.get_pipeline("acme/api", remote.id).status == "failed")
    before = len(control.requests())
    [job] = forge.failed_jobs("acme/api", remote.id, limit=10)
    assert job == FailedJob(
        name="rspec",
        stage="qa",
        reason="api_failure",
        url=job.url,
    )
    assert job.url.startswith(f"{sandbox.url}/acme/api/-/jobs/")
    asked = control.requests()[before:]
    assert len(asked) == 1 and asked[0]["path"].endswith(f"/pipelines/{remote.id}/jobs")
    assert asked[0]["query"].get("scope") == ["failed"]  # scope[]=failed


def test_github_names_the_failed_job_step_and_conclusion(
    sandbox: SandboxServer, control: SandboxClient
) -> None:
    control.create_github_repo("acme/web", files={".github/workflows/preview.yml": WORKFLOW})
    control.set_run_script("acme/web", "timed_out", job="e2e", step="Run Playwright")
    forge = GitHubForge(f"{sandbox.url}/api/v3", "ghp_x", timeout=5)
    forge.create_pipeline(
        "acme/web", "main", {"BATON_RUN_ID": "1", "BATON_RUN_NONCE": "n"}, workflow="preview.yml"
    )
    run = wait_until(
        lambda: [r for r in control.workflow_runs("acme/web") if r["status"] == "completed"]
    )[0]
    before = len(control.requests())
    [job] = forge.failed_jobs("acme/web", str(run["id"]), limit=10)
    assert (job.name, job.step, job.reason, job.stage) == ("e2e", "Run Playwright", "timed_out", "")
    assert job.url == f"{run['html_url']}/job/{job.url.rsplit('/', 1)[1]}"
    asked = control.requests()[before:]
    assert len(asked) == 1 and asked[0]["path"].endswith(f"/actions/runs/{run['id']}/jobs")


@responses.activate
def test_gitlab_puts_allowed_failures_last_and_keeps_the_limit() -> None:
    url = "http://gitlab.test/api/v4/projects/acme%2Fapi/pipelines/7/jobs"
    responses.get(
        url,
        json=[
            {"name": "lint", "stage": "test", "allow_failure": True, "failure_reason": None},
            {"name": "build", "stage": "build", "failure_reason": "runner_system_failure"},
            {"name": "deploy", "stage": "deploy", "failure_reason": "script_failure"},
        ],
    )
    forge = GitLabForge("http://gitlab.test", "tok", timeout=2)
    jobs = forge.failed_jobs("acme/api", "7", limit=2)
    assert [(j.name, j.reason) for j in jobs] == [
        ("build", "runner_system_failure"),
        ("deploy", "script_failure"),
    ]
    assert "per_page=2" in str(responses.calls[0].request.url)


@responses.activate
def test_github_keeps_failures_before_cancellations_and_survives_odd_shapes() -> None:
    url = "http://github.test:80/api/v3/repos/acme/web/actions/runs/9/jobs"
    responses.get(
        url,
        json={
            "total_count": 4,
            "jobs": [
                {"name": "ok", "conclusion": "success", "steps": []},
                {"name": "other", "conclusion": "cancelled", "steps": "not a list"},
                {
                    "name": "unit",
                    "conclusion": "failure",
                    "html_url": "javascript:alert(1)",
                    "steps": [
                        {"name": "Set up job", "conclusion": "success"},
                        {"name": "pytest", "conclusion": "failure"},
                    ],
                },
                "not a job",
            ],
        },
    )
    forge = GitHubForge("http://github.test:80/api/v3", "ghp_x", timeout=2)
    jobs = forge.failed_jobs("acme/web", "9", limit=10)
    assert [(j.name, j.reason, j.step) for j in jobs] == [
        ("unit", "failure", "pytest"),
        ("other", "cancelled", ""),
    ]
    # The adapter passes the forge's words on; bounding and link checks happen where they are
    # kept (chains/failures.py).
    assert jobs[0].url == "javascript:alert(1)"


@responses.activate
def test_an_unknown_pipeline_is_a_permanent_error() -> None:
    responses.get(
        "http://gitlab.test/api/v4/projects/acme%2Fapi/pipelines/7/jobs",
        status=404,
        json={"message": "404 Not found"},
    )
    forge = GitLabForge("http://gitlab.test", "tok", timeout=2)
    with pytest.raises(ForgeError) as info:
        forge.failed_jobs("acme/api", "7", limit=10)
    assert info.value.permanent
    with pytest.raises(ForgeError):
        forge.failed_jobs("acme/api", "7/../8", limit=10)  # never sent
    assert len(responses.calls) == 1
