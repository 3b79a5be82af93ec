"""Notifications, end to end: a chain fails on the sandbox (GitLab, then GitHub), and the sandbox's
chat room — posted to by Apprise's ``json://`` through a real Celery worker — receives one message
naming the failed job, why it failed, and the chain's link; a green chain on the same change then
brings one "recovered" message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from chains.models import Chain
from notify.models import Channel, Notification
from tests.e2e.conftest import Forges, eventually
from tests.e2e.dashboard_browser import chromium, require_browser
from tests.e2e.test_github_chain import WORKFLOW

pytestmark = [pytest.mark.e2e]
ROOM = "release"
SHOTS = os.environ.get("BATON_SCREENSHOTS", "")


def _messages(forges: Forges, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = forges.sandbox.chat_messages(ROOM)
        return found if len(found) >= count else None

    return eventually(check, 90, f"{count} message(s) in the sandbox chat")


def _channel(forges: Forges) -> Channel:
    return Channel.objects.create(name="release-chat", url=forges.sandbox.chat_url(ROOM))


def _check_failure(message: dict[str, Any], title: str, reason: str) -> Chain:
    chain = Chain.objects.get(status="failed")
    assert message["title"] == title
    assert reason in message["message"]
    assert message["message"].endswith(f"{settings.BATON_BASE_URL}/chains/{chain.pk}/")
    return chain


def _check_recovery(forges: Forges, failed: Chain, title: str) -> None:
    second = _messages(forges, 2)[1]
    green = Chain.objects.exclude(pk=failed.pk).get()
    assert green.status == "success"
    assert second["title"] == title
    assert second["message"].endswith(f"/chains/{green.pk}/")
    # One message per chain and event, each recorded as sent: the worker records that once the
    # chat has answered, a moment after the message shows there.
    pending = Notification.objects.filter(outcome="pending")
    eventually(lambda: not pending.exists(), 30, "every notification to be recorded")
    rows = Notification.objects.order_by("pk").values_list("chain", "event", "outcome")
    assert list(rows) == [
        (failed.pk, "chain_failed", "sent"),
        (green.pk, "chain_recovered", "sent"),
    ]
    assert len(forges.sandbox.chat_messages(ROOM)) == 2


def test_a_failed_gitlab_chain_posts_one_message_then_one_when_it_recovers(
    forges: Forges,
) -> None:
    _channel(forges)
    forges.project(
        "acme/api", outcome="failed", job="rspec", stage="test", failure_reason="script_failure"
    )
    forges.project(
        "acme/app",
        {".baton.yml": "notify: [release-chat]\ndownstream: [{key: api, project: acme/api}]\n"},
    )
    mr = forges.sandbox.open_merge_request(
        "acme/app", "feature/x", title="Add x", author="alice", files={"x.py": "1"}
    )
    [message] = _messages(forges, 1)
    failed = _check_failure(
        message, "Chain failed: acme/app !1 “Add x”", "api (acme/api): rspec (script failure)"
    )

    forges.sandbox.set_script("acme/api", outcome="success", pending=0.2, running=0.8)
    forges.sandbox.push("acme/app", mr["iid"], {"x.py": "2"})
    _check_recovery(forges, failed, "Chain recovered: acme/app !1 “Add x”")


def test_a_failed_github_chain_posts_one_message_then_one_when_it_recovers(
    forges: Forges,
) -> None:
    _channel(forges)
    forges.repo(
        "acme/docs",
        {".github/workflows/preview.yml": WORKFLOW},
        outcome="timed_out",
        job="build-docs",
        step="Run sphinx",
    )
    baton_yml = (
        "notify:\n  - channel: release-chat\n    events: [chain_failed, chain_recovered]\n"
        "downstream: [{key: docs, project: acme/docs, workflow: preview.yml}]\n"
    )
    forges.repo("acme/app", {".baton.yml": baton_yml})
    pr = forges.sandbox.open_pull_request(
        "acme/app", "feature/x", base="main", title="Add x", author="alice", files={"x": "1"}
    )
    [message] = _messages(forges, 1)
    failed = _check_failure(
        message,
        "Chain failed: acme/app #1 “Add x”",
        "docs (acme/docs): build-docs / Run sphinx (timed out)",
    )

    forges.sandbox.set_run_script("acme/docs", outcome="success", pending=0.2, running=0.8)
    forges.sandbox.push_pull_request("acme/app", pr["number"], {"x": "2"})
    _check_recovery(forges, failed, "Chain recovered: acme/app #1 “Add x”")


@pytest.mark.skipif(not SHOTS, reason="writes screenshots only when BATON_SCREENSHOTS is set")
def test_notification_screenshots(forges: Forges, live_server: Any) -> None:
    """docs/screenshots: the sandbox chat room with a failure message, the admin's channel page
    (no URL shown) and its list of notifications sent."""
    require_browser()
    out = Path(SHOTS)
    out.mkdir(parents=True, exist_ok=True)
    channel = _channel(forges)
    forges.project(
        "acme/api", outcome="failed", job="rspec", stage="test", failure_reason="script_failure"
    )
    forges.project(
        "acme/web",
        outcome="failed",
        job="e2e-chrome",
        stage="test",
        failure_reason="job_execution_timeout",
    )
    yml = (
        "notify: [release-chat]\ndownstream:\n  - {key: api, label: API tests, project: acme/api}\n"
        "  - {key: web, label: Web front end, project: acme/web}\n"
    )
    forges.project("acme/app", {".baton.yml": yml})
    forges.sandbox.open_merge_request(
        "acme/app", "feature/search", title="Make search faster", author="alice", files={"x": "1"}
    )
    _messages(forges, 1)
    eventually(
        lambda: Notification.objects.filter(outcome="sent").exists(), 30, "the row to say sent"
    )
    User.objects.create_superuser("admin", "admin@example.com", "demo-password")
    base = live_server.url
    with chromium(viewport={"width": 1280, "height": 800}) as ctx:
        page = ctx.new_page()
        page.goto(f"{forges.sandbox.base_url}/_sandbox/chat/{ROOM}/page")
        page.screenshot(path=out / "notification-chat.png", full_page=True)
        page.goto(f"{base}/admin/login/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("demo-password")
        page.get_by_role("button", name="Log in").click()
        page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        page.goto(f"{base}/admin/notify/channel/{channel.pk}/change/")
        assert "_sandbox/chat" not in page.content()  # the URL is write-only
        page.screenshot(path=out / "admin-channel.png", full_page=True)
        page.goto(f"{base}/admin/notify/notification/")
        page.screenshot(path=out / "admin-notifications.png", full_page=True)
