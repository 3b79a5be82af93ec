"""The chain graph and the chain list grouped by change, in headless Chromium against the live
server (issue 13, parts 5 and 6): the graph's nodes in words and their live update through the
page's poll, the superseded toggle and the folded earlier chains, the "needs attention" filter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from chains.models import Chain, Grant, Run
from tests.e2e.dashboard_browser import chromium, require_browser, seed_demo, sign_in

PASSWORD = "e2e-password-1"


@pytest.fixture
def page(
    live_server: Any, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    require_browser()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    rita = User.objects.create_user("rita", password=PASSWORD)
    Grant.objects.create(user=rita, projects="*", actions=["view", "trigger", "retry", "cancel"])
    with chromium(viewport={"width": 1280, "height": 900}) as context:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        refused: list[str] = []
        tab.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        sign_in(tab, live_server.url, "rita", PASSWORD)
        yield tab
        assert not refused, refused


def test_the_graph_shows_runs_in_words_and_follows_them_live(page: Any, live_server: Any) -> None:
    demo = seed_demo()
    release: Chain = demo["release"]
    page.goto(f"{live_server.url}/chains/{release.pk}/")
    graph = page.locator(".chain-graph svg.graph")
    graph.wait_for()
    assert graph.is_visible()
    api = release.runs.get(key="api")
    node = page.locator(f"#gnode-{api.pk}")
    assert node.get_attribute("aria-label") == "API tests: running, triggered by Build images"
    smoke = page.locator("a.gnode[aria-label^='Smoke tests: waiting']")
    assert "waits for Build images" in (smoke.get_attribute("aria-label") or "")
    assert page.locator("path.edge-needs").count() == 1
    # The node follows the run through the chain page's poll, without a reload.
    Run.objects.filter(pk=api.pk).update(status="success")
    page.locator(f"#gnode-{api.pk}[data-status='success']").wait_for()
    assert "API tests: success" in (
        page.locator(f"#gnode-{api.pk}").get_attribute("aria-label") or ""
    )
    # A node leads to its row in the tree.
    node = page.locator(f"#gnode-{api.pk}")
    node.click()
    assert page.url.endswith(f"#run-{api.pk}")


def test_the_list_groups_by_change_and_folds_superseded_chains(page: Any, live_server: Any) -> None:
    demo = seed_demo()
    release: Chain = demo["release"]
    earlier = list(Chain.objects.filter(superseded_by=release).order_by("-created_at"))
    page.goto(f"{live_server.url}/")
    row = page.locator(f"#chain-{release.pk}")
    row.wait_for()
    assert "2 earlier chains (superseded)" in row.inner_text()
    for old in earlier:
        assert page.locator(f"#chain-{old.pk}").count() == 0
    dot = row.locator("a.dot[aria-label='Web app: failed']")
    assert dot.get_attribute("title") == "Web app: failed"
    assert "finished" in row.locator(".outcome-text").inner_text()
    # The toggle shows the earlier chains, folded under the latest one.
    page.get_by_label("Show superseded chains").check()
    page.wait_for_url("**superseded=show**")
    details = page.locator(f"#change-{release.pk} details.earlier")
    details.wait_for()
    assert not page.locator(f"#chain-{earlier[0].pk}").is_visible()  # folded
    details.locator("summary").click()
    page.locator(f"#chain-{earlier[0].pk}").wait_for(state="visible")
    # Needs attention: the failed and canceled-with-failure chains stay, the green ones go.
    page.get_by_label("Needs attention").check()
    page.wait_for_url("**attention=on**")
    page.locator(f"#chain-{release.pk}").wait_for()  # a failed run in it
    payments = Chain.objects.get(repository__path="acme/payments")
    assert page.locator(f"#chain-{payments.pk}").count() == 0
