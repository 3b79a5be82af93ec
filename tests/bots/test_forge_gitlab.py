"""The GitLab adapter turns python-gitlab results and failures into neutral ones."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from bots.forges.base import ForgeError
from bots.forges.gitlab import GitLabForge
from chains.status import Status

URL = "http://gitlab.test"


@pytest.fixture
def forge() -> GitLabForge:
    return GitLabForge(URL, "tok", timeout=2)


@responses.activate
def test_create_pipeline_sends_variables_and_maps_status(forge: GitLabForge) -> None:
    responses.post(
        f"{URL}/api/v4/projects/acme%2Fapi/pipeline",
        json={"id": 61, "status": "created", "web_url": f"{URL}/acme/api/-/pipelines/61"},
        status=201,
    )
    remote = forge.create_pipeline("acme/api", "main", {"A": "1"})
    assert (remote.id, remote.status) == ("61", Status.PENDING)
    sent = responses.calls[0].request
    assert sent.headers["PRIVATE-TOKEN"] == "tok"
    body = sent.body if isinstance(sent.body, bytes) else str(sent.body).encode()
    assert b'"variables": [{"key": "A", "value": "1"}]' in body


@responses.activate
def test_a_project_s_object_is_made_once_and_serves_every_call(
    forge: GitLabForge, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in (61, 62):
        responses.post(
            f"{URL}/api/v4/projects/acme%2Fapi/pipeline",
            json={"id": number, "status": "created", "web_url": f"{URL}/p/{number}"},
            status=201,
        )
    made: list[str] = []
    get = forge._gl.projects.get

    def counted(path: str, **kw: Any) -> Any:
        made.append(path)
        return get(path, **kw)

    monkeypatch.setattr(forge._gl.projects, "get", counted)
    first = forge.create_pipeline("acme/api", "main", {})
    second = forge.create_pipeline("acme/api", "main", {})
    assert (first.id, second.id) == ("61", "62")  # each call its own request and answer
    assert made == ["acme/api"]
    with pytest.raises(ForgeError):  # a path that could name another is refused, every time
        forge.create_pipeline("acme/../admin", "main", {})
    assert "acme/../admin" not in forge._projects
    monkeypatch.setattr("bots.forges.gitlab.PROJECTS_KEPT", 2)
    forge._project("acme/web")
    forge._project("acme/api")  # used again: kept over acme/web
    forge._project("acme/docs")  # over the bound: the least recently used is let go
    assert list(forge._projects) == ["acme/api", "acme/docs"]


@responses.activate
def test_429_is_a_rate_limit_with_retry_after(forge: GitLabForge) -> None:
    responses.post(
        f"{URL}/api/v4/projects/acme%2Fapi/pipeline",
        status=429,
        json={"message": "Retry later"},
        headers={"Retry-After": "7"},
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/api", "main", {})
    assert info.value.rate_limited and info.value.retry_after == 7
    assert not info.value.permanent and not info.value.uncertain
    assert len(responses.calls) == 1  # no sleeping retries inside the worker


@responses.activate
def test_unknown_project_is_permanent_with_the_forge_words(forge: GitLabForge) -> None:
    responses.post(
        f"{URL}/api/v4/projects/acme%2Fnope/pipeline",
        status=404,
        json={"message": "404 Project Not Found"},
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/nope", "main", {})
    assert info.value.permanent
    assert "404 Project Not Found" in info.value.message


@responses.activate
def test_bad_ref_is_permanent(forge: GitLabForge) -> None:
    responses.post(
        f"{URL}/api/v4/projects/acme%2Fapi/pipeline",
        status=400,
        json={"message": {"base": ["Reference not found"]}},
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/api", "nope", {})
    assert info.value.permanent and "Reference not found" in info.value.message


@responses.activate
def test_5xx_or_no_answer_on_create_is_uncertain(forge: GitLabForge) -> None:
    responses.post(f"{URL}/api/v4/projects/acme%2Fapi/pipeline", status=502, body="bad gateway")
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/api", "main", {})
    assert info.value.uncertain and not info.value.permanent
    responses.replace(
        responses.POST,
        f"{URL}/api/v4/projects/acme%2Fapi/pipeline",
        body=requests.ConnectionError("reset"),
    )
    with pytest.raises(ForgeError) as info:
        forge.create_pipeline("acme/api", "main", {})
    assert info.value.uncertain


@responses.activate
def test_missing_file_is_none(forge: GitLabForge) -> None:
    responses.get(
        f"{URL}/api/v4/projects/acme%2Fapp/repository/files/.baton.yml/raw",
        status=404,
        json={"message": "404 File Not Found"},
    )
    assert forge.read_file("acme/app", ".baton.yml", "abc") is None


@responses.activate
def test_find_pipeline_matches_the_marker_only(forge: GitLabForge) -> None:
    from datetime import UTC, datetime

    base = f"{URL}/api/v4/projects/acme%2Fapi/pipelines"
    responses.get(base, json=[{"id": 2, "status": "running"}, {"id": 1, "status": "success"}])
    responses.get(f"{base}/2/variables", json=[{"key": "BATON_RUN_ID", "value": "99"}])
    responses.get(f"{base}/1/variables", json=[{"key": "BATON_RUN_ID", "value": "5"}])
    found = forge.find_pipeline("acme/api", "main", ("BATON_RUN_ID", "5"), datetime.now(UTC))
    assert found is not None and found.id == "1"
    assert forge.find_pipeline("acme/api", "main", ("BATON_RUN_ID", "6"), datetime.now(UTC)) is None


SHA = "a" * 40


@responses.activate
def test_a_status_gitlab_already_shows_is_no_error(forge: GitLabForge) -> None:
    responses.post(
        f"{URL}/api/v4/projects/acme%2Fapi/statuses/{SHA}",
        status=400,
        json={
            "message": "Cannot transition status via :enqueue from :pending "
            '(Reason(s): Status cannot transition via "enqueue")'
        },
    )
    forge.set_commit_status(
        "acme/api", SHA, context="baton/x", status=Status.PENDING, description="", target_url=""
    )
    assert len(responses.calls) == 1


@responses.activate
def test_other_refused_statuses_stay_errors(forge: GitLabForge) -> None:
    responses.post(
        f"{URL}/api/v4/projects/acme%2Fapi/statuses/{SHA}",
        status=400,
        json={"error": "state does not have a valid value"},
    )
    with pytest.raises(ForgeError) as info:
        forge.set_commit_status(
            "acme/api", SHA, context="baton/x", status=Status.PENDING, description="", target_url=""
        )
    assert info.value.permanent


def test_queued_waiting_and_pending_are_one_state_on_gitlab(forge: GitLabForge) -> None:
    assert {forge.commit_state(s) for s in (Status.QUEUED, Status.WAITING, Status.PENDING)} == {
        "pending"
    }
    assert forge.commit_state(Status.RUNNING) != forge.commit_state(Status.PENDING)


@responses.activate
def test_polling_a_project_lists_the_pipelines_updated_since(forge: GitLabForge) -> None:
    from datetime import UTC, datetime

    responses.get(
        f"{URL}/api/v4/projects/acme%2Fapi/pipelines",
        json=[
            {"id": 62, "status": "running", "updated_at": "2026-01-01T12:04:00.000Z"},
            {"id": 61, "status": "success", "updated_at": "2026-01-01T12:03:00.000Z"},
        ],
    )
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    listing = forge.changed_pipelines("acme/api", updated_after=since, created_after=since)
    assert listing.complete
    assert [(p.id, p.status) for p in listing.pipelines] == [
        ("62", Status.RUNNING),
        ("61", Status.SUCCESS),
    ]
    # The list shows no finish time: a finished pipeline last changed when it ended.
    assert listing.pipelines[1].finished_at == datetime(2026, 1, 1, 12, 3, tzinfo=UTC)
    assert listing.pipelines[0].finished_at is None
    from urllib.parse import parse_qsl, urlsplit

    query = dict(parse_qsl(urlsplit(responses.calls[0].request.url or "").query))
    assert query["updated_after"] == since.isoformat()
    assert (query["order_by"], query["sort"], query["per_page"]) == ("updated_at", "desc", "100")
    assert len(responses.calls) == 1


def test_the_environment_s_proxies_are_read_once_per_host_and_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bots.forges import gitlab as adapter

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "internal.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/forge-ca.pem")
    reads: list[str] = []
    real = adapter.get_environ_proxies

    def counted(url: str, no_proxy: Any = None) -> Any:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(adapter, "get_environ_proxies", counted)
    session = adapter._Session()
    out = "https://gitlab.example.com/api/v4/projects/1"
    for _ in range(3):
        settings = session.merge_environment_settings(out, {}, None, None, None)
        assert settings["proxies"]["https"] == "http://proxy.test:3128"
        assert settings["verify"] == "/etc/ssl/forge-ca.pem"
    inside = session.merge_environment_settings("https://internal.test/x", {}, None, None, None)
    assert "https" not in inside["proxies"]  # NO_PROXY, as requests reads it
    given = session.merge_environment_settings(out, {"https": "http://mine"}, None, False, None)
    assert (given["proxies"]["https"], given["verify"]) == ("http://mine", False)
    assert reads == [out, "https://internal.test/x"]  # once per host
