"""The GitLab adapter's merge request pipelines: `project: self` runs through
POST /projects/:id/merge_requests/:iid/pipelines and is found again without a marker."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from bots.forges.base import ForgeError
from bots.forges.github import GitHubForge
from bots.forges.gitlab import GitLabForge
from chains.status import Status

URL = "http://gitlab.test"
MR_PIPELINES = f"{URL}/api/v4/projects/acme%2Fapp/merge_requests/7/pipelines"


@pytest.fixture
def forge() -> GitLabForge:
    return GitLabForge(URL, "tok", timeout=2)


@responses.activate
def test_a_change_pipeline_is_a_merge_request_pipeline_without_variables(
    forge: GitLabForge,
) -> None:
    responses.post(
        MR_PIPELINES,
        json={
            "id": 90,
            "status": "created",
            "ref": "refs/merge-requests/7/head",
            "source": "merge_request_event",
            "web_url": f"{URL}/acme/app/-/pipelines/90",
        },
        status=200,  # GitLab answers 200 here (lib/api/merge_requests.rb)
    )
    remote = forge.create_change_pipeline(
        "acme/app", 7, {"UPSTREAM_SHA": "a" * 40, "BATON_RUN_ID": "5", "BATON_RUN_NONCE": "n"}
    )
    assert (remote.id, remote.status) == ("90", Status.PENDING)
    assert remote.undelivered == ("BATON_RUN_ID", "UPSTREAM_SHA")  # never the secret nonce
    sent = responses.calls[0].request
    assert sent.method == "POST" and sent.url == MR_PIPELINES
    assert b"UPSTREAM_SHA" not in (sent.body or b"")  # the endpoint takes no variables


@responses.activate
def test_a_lost_answer_of_a_change_pipeline_is_uncertain(forge: GitLabForge) -> None:
    responses.post(MR_PIPELINES, status=502, json={"message": "502 Bad Gateway"})
    with pytest.raises(ForgeError) as info:
        forge.create_change_pipeline("acme/app", 7, {})
    assert info.value.uncertain and not info.value.permanent


@responses.activate
def test_a_refused_change_pipeline_keeps_gitlabs_words(forge: GitLabForge) -> None:
    responses.post(MR_PIPELINES, status=400, json={"message": {"base": ["Missing CI config file"]}})
    with pytest.raises(ForgeError) as info:
        forge.create_change_pipeline("acme/app", 7, {})
    assert info.value.permanent and "Missing CI config file" in info.value.message


@responses.activate
def test_a_change_pipeline_is_found_by_ref_source_account_and_time(forge: GitLabForge) -> None:
    responses.get(f"{URL}/api/v4/user", json={"id": 1, "username": "baton-bot"})
    responses.get(
        f"{URL}/api/v4/projects/acme%2Fapp/pipelines",
        json=[{"id": 91, "status": "running", "web_url": "", "created_at": None}],
    )
    since = datetime(2026, 1, 1, tzinfo=UTC)
    found = forge.find_pipeline(
        "acme/app", "refs/merge-requests/7/head", ("BATON_RUN_NONCE", "n"), since
    )
    assert found is not None and found.id == "91"
    query = parse_qs(urlparse(str(responses.calls[-1].request.url)).query)
    assert query["ref"] == ["refs/merge-requests/7/head"]
    assert query["source"] == ["merge_request_event"]
    assert query["username"] == ["baton-bot"]
    assert query["sort"] == ["asc"]  # the first one created after the send
    assert query["created_after"] == [since.isoformat()]
    # No variables are read: a merge request pipeline has none.
    assert not any("/variables" in str(c.request.url) for c in responses.calls)
    forge.find_pipeline("acme/app", "refs/merge-requests/7/head", ("K", "v"), since)
    assert sum(str(c.request.url).endswith("/user") for c in responses.calls) == 1  # once


@responses.activate
def test_change_refs_of_merge_requests(forge: GitLabForge) -> None:
    responses.get(
        f"{URL}/api/v4/projects/acme%2Fapp/merge_requests/7",
        json={
            "iid": 7,
            "web_url": f"{URL}/acme/app/-/merge_requests/7",
            "title": "Fix",
            "author": {"username": "bob"},
            "source_branch": "fix",
            "target_branch": "main",
            "sha": "b" * 40,
            "source_project_id": 2,
            "target_project_id": 1,
            "state": "opened",
        },
    )
    change = forge.get_change("acme/app", 7)
    assert change.from_fork and change.child_ref == "refs/merge-requests/7/head"


def test_github_has_no_change_pipelines() -> None:
    github = GitHubForge("http://github.test/api/v3", "tok", timeout=2)
    with pytest.raises(ForgeError) as info:
        github.create_change_pipeline("acme/app", 7, {})
    assert info.value.permanent and "refs/pull/7/head" in info.value.message
