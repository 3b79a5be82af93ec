"""The chain page and the API say what happened: a re-run mode sent no variables (and may have
reused a finished pipeline), and a soft-failed run is soft-failed."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories as f

pytestmark = pytest.mark.django_db

REUSED = (
    "reused pipeline #41: it had passed already and the forge had no failed or canceled job to "
    "run again, so nothing new was triggered (mode rerun-last-successful)"
)


def test_a_rerun_that_reused_a_pipeline_says_so_and_lists_no_variable_as_sent(
    viewer_client: Client,
) -> None:
    chain = f.chain(status="success")
    variables = {"UPSTREAM_REF": "refs/merge-requests/7/head", "UPSTREAM_PROJECT": "acme/app"}
    reused = f.run(
        chain,
        "api",
        status="success",
        mode="rerun-last-successful",
        dispatch="sent",
        remote_id="41",
        variables=variables,
        undelivered=sorted(variables),
        error=REUSED,
    )
    created = f.run(chain, "web", status="success", dispatch="sent", variables=variables)
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    row = html.split('data-key="api"')[1].split("</tr>")[0]
    assert "reused pipeline #41" in row and "nothing new was triggered" in row
    assert "not sent: mode rerun-last-successful re-runs a pipeline" in row
    other = html.split('data-key="web"')[1].split("</tr>")[0]
    assert "not sent" not in other
    shown = viewer_client.get(f"/api/v1/runs/{reused.pk}/").json()
    assert shown["mode"] == "rerun-last-successful" and shown["error"] == REUSED
    assert shown["undelivered"] == ["UPSTREAM_PROJECT", "UPSTREAM_REF"]
    assert viewer_client.get(f"/api/v1/runs/{created.pk}/").json()["undelivered"] == []


def test_a_soft_failed_run_is_soft_failed_on_the_page_and_in_the_api(
    viewer_client: Client,
) -> None:
    chain = f.chain(status="success")
    lint = f.run(chain, "lint", status="failed", soft_fail=True)
    api = f.run(chain, "api", status="running", soft_fail=True)
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert ">soft-failed</span>" in html.split('data-key="lint"')[1].split("</tr>")[0]
    assert ">soft fail</span>" in html.split('data-key="api"')[1].split("</tr>")[0]
    assert viewer_client.get(f"/api/v1/runs/{lint.pk}/").json()["soft_failed"] is True
    assert viewer_client.get(f"/api/v1/runs/{api.pk}/").json()["soft_failed"] is False
