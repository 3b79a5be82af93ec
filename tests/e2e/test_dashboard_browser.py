"""The dashboard in a real browser (headless Chromium through Playwright) against the real
stack: the sandbox forge, a Celery worker and the live server. Also writes the screenshots of
`make screenshots` (BATON_SCREENSHOTS=<dir>)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from chains.models import AuditEvent, Chain, Grant, Run
from tests.e2e.conftest import Forges, eventually
from tests.e2e.dashboard_browser import (
    chromium,
    require_browser,
    seed_demo,
    seed_history,
    sign_in,
)

SHOTS = os.environ.get("BATON_SCREENSHOTS", "")
PASSWORD = "e2e-password-1"


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    require_browser()
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium(viewport={"width": 1280, "height": 900}) as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())
        # The dashboard works under its Content-Security-Policy: nothing it does is refused.
        refused: list[str] = []
        page.on(
            "console",
            lambda message: (
                refused.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield page
        assert not refused, refused


@pytest.fixture
def manager(forges: Forges) -> User:
    return forges.person("rita", everything=True, password=PASSWORD)


DEMO_CONFIG = """\
variables:
  RELEASE_STREAM: stable
  REGISTRY_TOKEN: {value: "not-shown", masked: true}
downstream:
  - key: build-images
    label: Build images
    project: self
  - key: api
    label: API tests
    project: acme/api
    depends_on: [build-images]
  - key: web
    label: Web app
    project: acme/web
    strategy: sometimes
"""


def remember_config(repository: Any) -> None:
    """The screenshots' forge is not reachable: put the demo's `.baton.yml` where the repository
    page's reader remembers it (the live server shares this process's cache)."""
    from datetime import UTC, datetime

    from django.conf import settings
    from django.core.cache import caches

    from bots import caching

    key = caching.key("repository-config", repository.pk, repository.default_branch)
    answer = (DEMO_CONFIG, datetime.now(UTC).isoformat())
    caches["default"].set(key, (answer,), int(settings.BATON_REPOSITORY_CONFIG_TTL) + 600)


def open_change(forges: Forges, yml: str, target: str = "main") -> dict[str, Any]:
    project = forges.project("acme/app", {".baton.yml": yml, "README.md": "app"})
    if target != "main":
        forges.sandbox.commit(project["id"], {"CHANGELOG": "1.2"}, branch=target)
    return forges.sandbox.open_merge_request(
        "acme/app",
        "feature/x",
        target_branch=target,
        title="Add x",
        author="alice",
        files={"app.py": "print('x')"},
    )


def run_row(page: Any, key: str) -> Any:
    return page.locator(f'tr.run[data-key="{key}"]')


@pytest.mark.e2e
def test_sign_in_and_watch_a_run_succeed_live_then_the_release_matrix(
    forges: Forges, manager: User, browser_page: Any, live_server: Any
) -> None:
    page = browser_page
    forges.project("acme/api", running=3)
    open_change(forges, "downstream: [{project: acme/api}]\n", target="release/1.2")
    sign_in(page, live_server.url, "rita", PASSWORD)
    chain = eventually(lambda: Chain.objects.first(), 20, "the chain")
    run = eventually(lambda: chain.runs.filter(status="running").first(), 20, "the run to start")

    page.goto(f"{live_server.url}/chains/{chain.pk}/")
    page.evaluate("window.notReloaded = true")
    row = run_row(page, "api")
    assert row.get_attribute("data-status") == "running"
    assert "running" in row.locator(".status").inner_text()

    # The forge's webhook moves the run; the open page follows within 2 s, without a reload.
    seen_in_db = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if seen_in_db is None and Run.objects.get(pk=run.pk).status == "success":
            seen_in_db = time.monotonic()
        if row.get_attribute("data-status") == "success":
            break
        time.sleep(0.05)
    shown = time.monotonic()
    assert seen_in_db is not None, "the run finished on the forge"
    assert shown - seen_in_db < 2.0, f"the page lagged {shown - seen_in_db:.1f}s"
    assert page.evaluate("window.notReloaded") is True
    # Once the chain is finished the page stops polling.
    page.locator('#chain-live[data-settled="true"]').wait_for()
    assert page.locator("#chain-live").get_attribute("hx-trigger") is None
    # Sizes come as data attributes that app.js applies (no inline style under the CSP).
    bar = page.locator(".progress > span[data-width]").first
    assert bar.evaluate("el => el.style.width") == bar.get_attribute("data-width") + "%"

    # The release matrix: pick the branch, see the project's latest chain and its run.
    page.get_by_role("link", name="Releases").click()
    page.get_by_role("combobox", name="Branch or tag").fill("release/1.2")
    page.get_by_role("button", name="Show").click()
    matrix = page.locator("table.matrix")
    assert "acme/app !1" in matrix.locator("tbody th").inner_text()
    assert matrix.locator("thead").get_by_text("acme/api").is_visible()
    assert "success" in matrix.locator("tbody td").nth(1).inner_text()


@pytest.mark.e2e
def test_retry_a_failed_run_and_see_the_new_attempt(
    forges: Forges, manager: User, browser_page: Any, live_server: Any
) -> None:
    page = browser_page
    forges.project("acme/api", queue=["failed", "success"])
    open_change(forges, "downstream: [{project: acme/api}]\n")
    sign_in(page, live_server.url, "rita", PASSWORD)
    chain = eventually(
        lambda: Chain.objects.filter(status="failed", mirror_requested_at=None).first(), 30
    )
    page.goto(f"{live_server.url}/chains/{chain.pk}/")
    row = run_row(page, "api")
    assert row.get_attribute("data-status") == "failed"
    row.get_by_role("button", name="Retry").dblclick()  # a double click retries once
    page.locator("#notice").get_by_text("attempt 2 is on its way").wait_for()
    # A locator, not wait_for_function: a string evaluated in the page is what the CSP refuses.
    page.locator('tr.run[data-key=api][data-status="success"]').wait_for(timeout=30_000)
    assert row.locator(".attempt").inner_text() == "2"
    row.get_by_text("1 earlier").click()
    assert "Attempt 1" in row.locator(".attempts").inner_text()
    assert "failed" in row.locator(".attempts").inner_text()
    assert len(forges.sandbox.requests(method="POST", path="/retry")) == 1
    audit = AuditEvent.objects.get(action="run.retry")
    assert (audit.actor, audit.surface, audit.remote_addr) == ("rita", "dashboard", "127.0.0.1")


@pytest.mark.e2e
def test_cancel_a_whole_chain(
    forges: Forges, manager: User, browser_page: Any, live_server: Any
) -> None:
    page = browser_page
    forges.project("acme/api", running=60)
    forges.project("acme/web", running=60)
    open_change(forges, "downstream: [{project: acme/api}, {project: acme/web}]\n")
    sign_in(page, live_server.url, "rita", PASSWORD)
    chain = eventually(
        lambda: (c := Chain.objects.first()) and c.runs.filter(status="running").count() == 2 and c,
        30,
    )
    page.goto(f"{live_server.url}/chains/{chain.pk}/")
    page.get_by_role("button", name="Cancel chain").click()  # the confirm dialog is accepted
    page.locator("#notice").get_by_text("Canceling 2 runs.").wait_for()
    for key in ("api", "web"):
        page.locator(f'tr.run[data-key="{key}"][data-status="canceled"]').wait_for(timeout=30_000)
    for project in ("acme/api", "acme/web"):
        assert [p["status"] for p in forges.sandbox.pipelines(project)] == ["canceled"]


@pytest.mark.e2e
def test_a_single_run_cancel_says_so_even_when_a_poll_comes_back_first(
    forges: Forges, manager: User, browser_page: Any, live_server: Any
) -> None:
    page = browser_page
    forges.project("acme/api", running=60)
    forges.project("acme/web", running=60)
    open_change(forges, "downstream: [{project: acme/api}, {project: acme/web}]\n")
    sign_in(page, live_server.url, "rita", PASSWORD)
    chain = eventually(
        lambda: (c := Chain.objects.first()) and c.runs.filter(status="running").count() == 2 and c,
        30,
    )
    page.goto(f"{live_server.url}/chains/{chain.pk}/")

    def slow_answer(route: Any) -> None:
        # The cancel is done at once, its answer held back: the page's 1 s polls see the change
        # meanwhile, and one that came back first used to replace the button that asked, leaving
        # htmx no #notice to put the answer's notice in (htmx:oobErrorNoTarget).
        answer = route.fetch()
        time.sleep(2.5)
        route.fulfill(response=answer)

    page.route("**/runs/*/cancel/", slow_answer)
    run_row(page, "api").get_by_role("button", name="Cancel").click()
    notice = page.locator("#notice .notice", has_text="Canceling")
    notice.wait_for()
    notice.get_by_role("button", name="Dismiss").click()
    notice.wait_for(state="detached")
    page.locator('tr.run[data-key="api"][data-status="canceled"]').wait_for(timeout=30_000)


@pytest.mark.skipif(not SHOTS, reason="writes screenshots only when BATON_SCREENSHOTS is set")
def test_screenshots(
    live_server: Any, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_browser()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM writes between browser steps
    out = Path(SHOTS)
    out.mkdir(parents=True, exist_ok=True)
    rita = User.objects.create_user("rita", password="demo-password")
    Grant.objects.create(user=rita, projects="*", actions=["view", "trigger", "retry", "cancel"])
    demo = seed_demo()
    base = live_server.url
    pages = {
        "chains": "/",
        "chain-detail": f"/chains/{demo['release'].pk}/",
        "chain-invalid-config": f"/chains/{demo['broken'].pk}/",
        "release": "/releases/?ref=release/1.2",
        "chains-grouped": "/?superseded=show",
        "chains-attention": "/?attention=on",
    }
    # After the pages above, so that they show the demo as it was: two weeks of finished runs
    # for the health charts, and the repository's .baton.yml.
    later = {
        "repository": f"/repositories/{demo['repository'].pk}/",
        "repositories": "/repositories/",
        "health": "/health/",
    }
    with chromium(viewport={"width": 1280, "height": 800}, timezone_id="Europe/Berlin") as ctx:
        page = ctx.new_page()
        page.goto(f"{base}/login/")
        page.screenshot(path=out / "login.png")
        sign_in(page, base, "rita", "demo-password")
        for name, path in pages.items():
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=out / f"{name}.png", full_page=True)
        page.goto(f"{base}{pages['chain-detail']}")
        page.locator(".chain-graph").screenshot(path=out / "chain-graph.png")
        seed_history(demo["repository"].forge)
        remember_config(demo["repository"])
        for name, path in later.items():
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            if name == "repository":
                page.locator("#repository-config h3").first.wait_for()
            page.screenshot(path=out / f"{name}.png", full_page=True)
    with chromium(viewport={"width": 390, "height": 844}, is_mobile=True) as ctx:
        page = ctx.new_page()
        sign_in(page, base, "rita", "demo-password")
        page.goto(f"{base}{pages['chain-detail']}")
        page.screenshot(path=out / "chain-detail-phone.png", full_page=True)
