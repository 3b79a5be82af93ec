"""The GitHub adapter: dispatch and correlation, rate limits, conditional polling."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
import responses

from bots.forges.base import ForgeError
from bots.forges.github import GitHubForge
from chains.status import Status

API = "http://github.test:80/api/v3"
WORKFLOW = """\
name: Preview
run-name: "Preview (baton run ${{ inputs.BATON_RUN_NONCE }})"
on:
  workflow_dispatch:
    inputs:
      UPSTREAM_REF: {required: true}
      BATON_RUN_ID: {required: false}
      BATON_RUN_NONCE: {required: false}
      ENVIRONMENT: {default: staging}
"""


@pytest.fixture
def forge() -> GitHubForge:
    return GitHubForge(API, "ghp_x", timeout=2)


def contents(text: str) -> dict[str, str]:
    return {
        "type": "file",
        "encoding": "base64",
        "content": base64.b64encode(text.encode()).decode(),
    }


def body(call: responses.Call) -> dict[str, object]:
    raw = call.request.body
    return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))


NONCE = "0f3c9a1e5b7d4c2a8e6f1b3d5c7a9e0f"
VARS = {
    "UPSTREAM_REF": "refs/pull/1/head",
    "BATON_RUN_ID": "42",
    "BATON_RUN_NONCE": NONCE,
    "OTHER": "x",
}


@responses.activate
def test_dispatch_sends_only_declared_inputs_and_reads_the_run_id(forge: GitHubForge) -> None:
    responses.get(
        f"{API}/repos/acme/docs/contents/.github/workflows/preview.yml", json=contents(WORKFLOW)
    )
    responses.post(
        f"{API}/repos/acme/docs/actions/workflows/preview.yml/dispatches",
        json={"workflow_run_id": 77, "run_url": "u", "html_url": "https://h/77"},
    )
    remote = forge.create_pipeline("acme/docs", "main", VARS, workflow="preview.yml")
    assert (remote.id, remote.web_url, remote.status) == ("77", "https://h/77", Status.PENDING)
    assert remote.undelivered == ("OTHER",)
    sent = body(responses.calls[1])
    assert sent == {
        "ref": "main",
        "return_run_details": True,
        "inputs": {
            "UPSTREAM_REF": "refs/pull/1/head",
            "BATON_RUN_ID": "42",
            "BATON_RUN_NONCE": NONCE,
        },
    }
    assert responses.calls[1].request.headers["Authorization"] == "token ghp_x"


@responses.activate
def test_an_older_server_refusing_run_details_falls_back_to_the_marker(forge: GitHubForge) -> None:
    responses.get(
        f"{API}/repos/acme/docs/contents/.github/workflows/preview.yml", json=contents(WORKFLOW)
    )
    url = f"{API}/repos/acme/docs/actions/workflows/preview.yml/dispatches"
    responses.post(
        url,
        status=422,
        json={"message": "Invalid request. return_run_details is not a permitted key."},
    )
    responses.post(url, status=204)
    remote = forge.create_pipeline("acme/docs", "main", VARS, workflow="preview.yml")
    assert remote.id == ""  # found later by its marker, never by guessing the newest run
    assert "return_run_details" not in body(responses.calls[2])
    responses.get(
        f"{API}/repos/acme/docs/actions/workflows/preview.yml/runs",
        json={
            "total_count": 2,
            "workflow_runs": [
                {"id": 10, "status": "queued", "display_title": "Preview (baton run 42)"},
                {"id": 9, "status": "queued", "display_title": f"Preview (baton run {NONCE}0)"},
                {
                    "id": 8,
                    "status": "in_progress",
                    "display_title": f"Preview (baton run {NONCE})",
                    "html_url": "https://h/8",
                },
            ],
        },
    )
    found = forge.find_pipeline(
        "acme/docs", "main", ("BATON_RUN_NONCE", NONCE), datetime.now(UTC), workflow="preview.yml"
    )
    assert found is not None and (found.id, found.status) == ("8", Status.RUNNING)


@responses.activate
def test_without_run_details_a_workflow_must_declare_the_marker(forge: GitHubForge) -> None:
    forge._return_run_details = False
    responses.get(
        f"{API}/repos/acme/docs/contents/.github/workflows/plain.yml",
        json=contents("on: {workflow_dispatch: {inputs: {A: {}}}}\n"),
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/docs", "main", VARS, workflow="plain.yml")
    assert info.value.permanent and "BATON_RUN_NONCE" in info.value.message


@responses.activate
def test_repository_dispatch_payload(forge: GitHubForge) -> None:
    responses.post(f"{API}/repos/acme/site/dispatches", status=204)
    remote = forge.create_pipeline("acme/site", "main", VARS)
    assert remote.id == ""
    sent = body(responses.calls[0])
    assert sent["event_type"] == "baton"
    assert sent["client_payload"] == {
        "BATON_RUN_ID": "42",
        "BATON_RUN_NONCE": NONCE,
        "variables": VARS,
    }


@responses.activate
def test_secondary_rate_limit_without_headers_waits_a_minute(forge: GitHubForge) -> None:
    responses.post(
        f"{API}/repos/acme/site/dispatches",
        status=403,
        json={"message": "You have exceeded a secondary rate limit."},
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/site", "main", VARS)
    assert info.value.rate_limited and info.value.retry_after == 60


@responses.activate
def test_retry_after_and_primary_reset(forge: GitHubForge) -> None:
    url = f"{API}/repos/acme/site/dispatches"
    responses.post(url, status=429, headers={"Retry-After": "3"}, json={"message": "slow down"})
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/site", "main", VARS)
    assert info.value.retry_after == 3
    reset = int(time.time()) + 120
    responses.replace(
        responses.POST,
        url,
        status=403,
        json={"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/site", "main", VARS)
    assert info.value.retry_after is not None and 115 < info.value.retry_after <= 120


@responses.activate
def test_polling_is_conditional(forge: GitHubForge) -> None:
    url = f"{API}/repos/acme/docs/actions/runs/8"
    responses.get(url, json={"id": 8, "status": "in_progress"}, headers={"ETag": '"v1"'})
    assert forge.get_pipeline("acme/docs", "8").status == Status.RUNNING
    responses.replace(responses.GET, url, status=304)
    assert forge.get_pipeline("acme/docs", "8").status == Status.RUNNING
    assert responses.calls[1].request.headers["If-None-Match"] == '"v1"'


@responses.activate
def test_unknown_repository_is_permanent(forge: GitHubForge) -> None:
    responses.get(f"{API}/repos/acme/ghost", status=404, json={"message": "Not Found"})
    with pytest.raises(ForgeError) as info:
        forge.get_project("acme/ghost")
    assert info.value.permanent and "Not Found" in info.value.message


@responses.activate
def test_check_runs_for_app_installations() -> None:
    forge = GitHubForge(API, "ghs_x", timeout=2, app_installation=True)
    responses.post(f"{API}/repos/acme/app/check-runs", json={"id": 1})
    forge.set_commit_status(
        "acme/app",
        "abc",
        context="baton/api",
        status=Status.FAILED,
        description="acme/api: failed",
        target_url="https://b/1",
    )
    sent = body(responses.calls[0])
    assert (sent["name"], sent["status"], sent["conclusion"]) == (
        "baton/api",
        "completed",
        "failure",
    )


@responses.activate
def test_polling_a_repository_is_one_conditional_list_call(forge: GitHubForge) -> None:
    url = f"{API}/repos/acme/docs/actions/runs"
    runs = {
        "total_count": 2,
        "workflow_runs": [
            {"id": 8, "status": "in_progress", "html_url": "h8"},
            {
                "id": 9,
                "status": "completed",
                "conclusion": "failure",
                "updated_at": "2026-01-01T12:05:00Z",
            },
        ],
    }
    responses.get(url, json=runs, headers={"ETag": '"L1"'})
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    listing = forge.changed_pipelines("acme/docs", updated_after=since, created_after=since)
    assert listing.complete
    assert [(p.id, p.status) for p in listing.pipelines] == [
        ("8", Status.RUNNING),
        ("9", Status.FAILED),
    ]
    assert listing.pipelines[1].finished_at == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    first = responses.calls[0].request
    assert "created=%3E%3D2026-01-01T12%3A00%3A00Z" in (first.url or "")
    assert "If-None-Match" not in first.headers

    responses.replace(responses.GET, url, status=304)
    again = forge.changed_pipelines("acme/docs", updated_after=since, created_after=since)
    assert responses.calls[1].request.headers["If-None-Match"] == '"L1"'
    assert again == listing  # a 304 answers with what the last list said

    responses.replace(responses.GET, url, json={**runs, "total_count": 150})
    later = datetime(2026, 1, 1, 12, 1, tzinfo=UTC)  # another question: asked afresh
    cut = forge.changed_pipelines("acme/docs", updated_after=later, created_after=later)
    assert "If-None-Match" not in responses.calls[2].request.headers
    assert not cut.complete  # more pages: the caller reads the missing runs one by one
