"""A failed run's failed jobs on the chain page and in the REST API: escaped, linked only to
http(s), for the current attempt only, and never for a project the reader may not view."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from chains.status import Status
from tests import factories as f

pytestmark = pytest.mark.django_db

JOBS = {
    "attempt": 1,
    "pipeline": "812",
    "jobs": [
        {
            "name": "rspec <b>x</b>",
            "stage": "test",
            "reason": "stuck_or_timeout_failure",
            "url": "https://gitlab.example.com/acme/api/-/jobs/9",
            "step": "",
        },
        {
            "name": "lint",
            "stage": "test",
            "reason": "script_failure",
            "url": "javascript:alert(1)",
            "step": "",
        },
    ],
}


def test_the_chain_page_names_the_failed_jobs_and_why(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=7, status="failed")
    f.run(chain, "api", status=Status.FAILED, remote_id="812", failed_jobs=JOBS)
    page = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert 'data-reason="stuck_or_timeout_failure"' in page
    assert (
        '<a href="https://gitlab.example.com/acme/api/-/jobs/9">rspec &lt;b&gt;x&lt;/b&gt;</a>'
        in page
    )
    assert "stuck or timeout failure" in page and "<b>x</b>" not in page
    assert "javascript:" not in page  # no link, just the name
    assert "lint" in page


def test_reasons_of_another_attempt_are_not_shown(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=7, status="running")
    f.run(chain, "api", status=Status.RUNNING, remote_id="812", attempt=2, failed_jobs=JOBS)
    page = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert "failed-job" not in page and "stuck or timeout" not in page


def test_the_api_lists_failed_jobs_and_hides_them_on_a_private_run() -> None:
    chain = f.chain("acme/app", number=7, status="failed")
    run = f.run(chain, "api", status=Status.FAILED, remote_id="812", failed_jobs=JOBS)
    hidden = f.run(
        chain,
        "vault",
        project="secret/vault",
        status=Status.FAILED,
        remote_id="812",
        failed_jobs=JOBS,
    )
    reader = f.persona("viewer", projects="acme/*")
    client = APIClient()
    client.force_authenticate(reader)
    data = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert [j["reason"] for j in data["failed_jobs"]] == [
        "stuck_or_timeout_failure",
        "script_failure",
    ]
    assert data["failed_jobs"][1]["url"] == ""  # not an http(s) link
    private = client.get(f"/api/v1/runs/{hidden.pk}/").json()
    assert private["private"] is True and private["failed_jobs"] is None
