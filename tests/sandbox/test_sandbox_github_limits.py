"""GitHub rate limits and conditional requests: x-ratelimit-* headers, ETag / 304 (not counted),
a scripted exhausted primary limit, and injected primary / secondary rate-limit faults."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests
from github import Github, GithubException, RateLimitExceededException

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

AUTH = {"Authorization": "token x"}
WORKFLOW = "name: W\non:\n  workflow_dispatch: {}\n"


@pytest.fixture
def repo(control: SandboxClient) -> dict:
    return control.create_github_repo("acme/api", files={".github/workflows/w.yml": WORKFLOW})


def test_rate_limit_headers_etag_and_304(
    forge: SandboxServer, control: SandboxClient, repo: dict
) -> None:
    url = f"{forge.url}/api/v3/repos/acme/api"
    first = requests.get(url, headers=AUTH)
    assert first.status_code == 200
    h = first.headers
    assert (h["x-ratelimit-limit"], h["x-ratelimit-used"], h["x-ratelimit-remaining"]) == (
        "5000",
        "1",
        "4999",
    )
    assert h["x-ratelimit-resource"] == "core" and int(h["x-ratelimit-reset"]) > time.time()
    etag = h["ETag"]
    assert etag.startswith('W/"')
    cached = requests.get(url, headers={**AUTH, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["x-ratelimit-remaining"] == "4999"  # not counted
    limits = requests.get(f"{forge.url}/api/v3/rate_limit", headers=AUTH).json()
    assert limits["resources"]["core"]["used"] == 1 and limits["rate"]["remaining"] == 4999
    log = control.requests(path="/api/v3/")
    assert [(r["status"], r["not_modified"], r["rate_limit_counted"]) for r in log] == [
        (200, False, True),
        (304, True, False),
        (200, False, False),
    ]


def test_pygithub_conditional_update(gh: Github, control: SandboxClient, repo: dict) -> None:
    # Long phases, set before the dispatch: the run must not move between the two reads.
    control.set_run_script("acme/api", pending=60, running=60)
    wf = gh.get_repo("acme/api").get_workflow("w.yml")
    run = gh.get_repo("acme/api").get_workflow_run(
        wf.create_dispatch("main", return_run_details=True).id
    )
    assert run.update() is False  # unchanged → 304
    control.finish_run("acme/api", run.id, "success")
    assert run.update() is True and run.conclusion == "success"
    assert gh.get_rate_limit().resources.core.used == 6  # 7 requests, one of them a 304


def test_scripted_primary_limit_exhaustion(
    forge: SandboxServer, gh: Github, control: SandboxClient, repo: dict
) -> None:
    control.github_rate_limit(remaining=1, reset_in=120)
    assert gh.get_repo("acme/api").full_name == "acme/api"
    with pytest.raises(RateLimitExceededException) as exc:
        gh.get_repo("acme/api")
    headers = exc.value.headers or {}
    assert exc.value.status == 403 and headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) >= time.time() + 100
    assert exc.value.data["message"].startswith("API rate limit exceeded")
    control.github_rate_limit(status=429, remaining=0)
    r = requests.get(f"{forge.url}/api/v3/repos/acme/api", headers=AUTH)
    assert r.status_code == 429
    free = requests.get(f"{forge.url}/api/v3/rate_limit", headers=AUTH)
    assert free.status_code == 200 and free.json()["rate"]["remaining"] == 0
    control.github_rate_limit(remaining=5000)
    assert requests.get(f"{forge.url}/api/v3/repos/acme/api", headers=AUTH).ok


def test_injected_primary_and_secondary_faults(
    make_github: Callable[..., Github], control: SandboxClient, repo: dict
) -> None:
    gh = make_github()
    control.add_fault(
        rate_limit="secondary",
        status=403,
        retry_after=7,
        count=1,
        method="POST",
        path="/dispatches$",
    )
    wf = gh.get_repo("acme/api").get_workflow("w.yml")
    with pytest.raises(RateLimitExceededException) as exc:
        wf.create_dispatch("main", throw=True)
    assert (exc.value.headers or {})["retry-after"] == "7"
    assert "secondary rate limit" in exc.value.data["message"]
    assert wf.create_dispatch("main") is True  # count exhausted

    control.add_fault(
        rate_limit="primary", status=429, retry_after=30, count=1, path="/actions/runs$"
    )
    with pytest.raises(GithubException) as err:  # PyGithub maps only 403s to the rate-limit type
        list(gh.get_repo("acme/api").get_workflow_runs())
    assert err.value.status == 429 and (err.value.headers or {})["x-ratelimit-remaining"] == "0"
    assert err.value.data["message"].startswith("API rate limit exceeded")
    control.add_fault(status=502, count=1, path="/pulls$")
    with pytest.raises(GithubException) as err:
        list(gh.get_repo("acme/api").get_pulls())
    assert err.value.status == 502
    log = control.requests(path="/actions/runs")
    assert log[-1]["fault"]["mode"] == "before" and log[-1]["rate_limit_counted"] is False
