"""The ETA where people read it: the chain page, the chain detail API, the summary comment."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from bots import summary
from chains.models import Chain
from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


def history(key: str, seconds: list[float]) -> None:
    """Earlier green runs of ``acme/<key>`` on main, each ``seconds`` long."""
    for s in seconds:
        end = timezone.now() - timedelta(hours=2)
        f.run(
            f.chain("acme/app", status="success", age=timedelta(hours=3)),
            key,
            status="success",
            started_at=end - timedelta(seconds=s),
            finished_at=end,
        )


def running() -> Chain:
    chain = f.chain("acme/app")
    f.run(chain, "build", status="running", started=timezone.now() - timedelta(seconds=30))
    f.run(chain, "deploy", status="waiting", depends_on=["build"])
    return chain


def test_the_chain_page_says_no_estimate_without_history(manager_client: Client) -> None:
    chain = running()
    page = manager_client.get(f"/chains/{chain.pk}/").content.decode()
    assert '<dd id="chain-eta">no estimate yet</dd>' in page


def test_the_chain_page_shows_the_expected_finish_and_its_poll_too(
    manager_client: Client,
) -> None:
    history("build", [600, 600, 600])
    history("deploy", [1200, 1200, 1800])
    chain = running()
    p50 = timezone.now() + timedelta(seconds=570 + 1200)
    for headers in ({}, HX):
        page = manager_client.get(f"/chains/{chain.pk}/", headers=headers).content.decode()
        assert '<dd id="chain-eta">expected to finish ~<time datetime="' in page
        # In UTC on the server, rewritten into the reader's timezone by static/js/app.js.
        shown = re.search(r'expected to finish ~<time datetime="([^"]+)"', page)
        assert shown is not None
        assert abs((datetime.fromisoformat(shown[1]) - p50).total_seconds()) < 30
        assert "(90 %: <time datetime=" in page


def test_a_finished_chain_shows_no_estimate(manager_client: Client) -> None:
    chain = f.chain("acme/app", status="success")
    f.run(chain, "build", status="success")
    assert 'id="chain-eta"' not in manager_client.get(f"/chains/{chain.pk}/").content.decode()


def test_the_summary_comment_carries_the_estimate() -> None:
    chain = running()
    assert "⏱️ no estimate yet" in summary.render(chain, list(chain.runs.all()))
    history("build", [60])
    history("deploy", [60])
    body = summary.render(chain, list(chain.runs.all()))
    assert "⏱️ expected to finish ~" in body
    assert " UTC (90 %: " in body
    chain.status = "success"
    assert "⏱️" not in summary.render(chain, [])
