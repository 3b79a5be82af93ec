"""The chain page says which variables never reached a run's pipeline (a GitLab merge request
pipeline takes none; a GitHub workflow only its declared inputs)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests import factories as f

pytestmark = pytest.mark.django_db


def test_variables_that_did_not_reach_the_pipeline_are_marked(viewer_client: Client) -> None:
    chain = f.chain(status="success")
    f.run(
        chain,
        "checks",
        status="success",
        ref="refs/merge-requests/7/head",
        variables={"UPSTREAM_SHA": "a" * 40, "STREAM": "stable"},
        undelivered=["UPSTREAM_SHA"],
    )
    f.run(chain, "api", status="success", variables={"UPSTREAM_SHA": "a" * 40})
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    row = html.split('data-key="checks"')[1].split('data-key="api"')[0]
    marked = re.findall(r"<dt>(\w+)</dt><dd><code>[^<]*</code>( <span[^>]*>not delivered)?", row)
    assert dict(marked) == {"UPSTREAM_SHA": ' <span class="muted">not delivered', "STREAM": ""}
    assert "not delivered" not in html.split('data-key="api"')[1]
