"""Helpers for the dashboard's browser tests and screenshots: headless Chromium from the
distribution's package driven by Playwright, signing in, and a small demo data set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from chains.models import Chain
from tests import factories as f

CHROMIUM = os.environ.get("BATON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def browser_missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package (pip install -e '.[dev]')"
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        return f"needs Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return ""


def require_browser() -> None:
    missing = browser_missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; CI=true, so this fails instead of skipping")
        pytest.skip(missing)


@contextmanager
def chromium(**context: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(**context)
            yield ctx
            ctx.close()
        finally:
            browser.close()


def sign_in(page: Any, base_url: str, username: str, password: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}{next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}{next_path}")


def seed_demo() -> dict[str, Any]:
    """A small, realistic data set: two forges, a release branch, a failed run with an earlier
    attempt, a nested tree, masked variables and an invalid configuration."""
    gitlab = f.forge("gitlab", "gitlab", "GitLab")
    github = f.forge("github", "github", "GitHub")
    hour = timedelta(hours=1)

    release = f.chain(
        "acme/app",
        on=gitlab,
        number=412,
        status="running",
        source="fix/payment-timeout",
        target="release/1.2",
        title="Retry payment provider calls with backoff",
        author="maria",
        age=timedelta(minutes=6),
    )
    build = f.run(
        release,
        "build-images",
        label="Build images",
        status="success",
        seconds=95,
        ref="release/1.2",
        variables={"RELEASE_STREAM": "stable", "IMAGE_TAG": "1.2.7"},
        masked_variables={"REGISTRY_TOKEN": "x"},
    )
    f.run(
        release,
        "api",
        label="API tests",
        project="acme/api",
        status="running",
        parent=build,
        ref="release/1.2",
        started=build.finished_at,
        seconds=None,
        variables={"ENVIRONMENT": "staging", "UPSTREAM_SHA": release.head_sha},
    )
    web = f.run(
        release,
        "web",
        label="Web app",
        project="acme/web",
        status="failed",
        parent=build,
        ref="release/1.2",
        started=build.finished_at,
        seconds=140,
        error="pipeline 88213 failed: job e2e-checkout exited with code 1",
        attempt=2,
    )
    f.attempt(web, 1, "failed", "pipeline 88190 failed: job lint exited with code 2")
    f.run(
        release,
        "docs",
        label="Docs preview",
        project="acme/docs",
        status="success",
        parent=web,
        ref="main",
        seconds=40,
        started=build.finished_at,
    )
    f.run(
        release,
        "smoke",
        label="Smoke tests",
        project="acme/smoke",
        status="waiting",
        ref="release/1.2",
        depends_on=["build-images"],
        remote_id="",
        web_url="",
        dispatch="idle",
        triggered_at=None,
        started=None,
        seconds=None,
    )
    # Two earlier commits of the same merge request, superseded by the latest chain: folded
    # under it in the chain list.
    for i, (state, minutes) in enumerate((("failed", 40), ("canceled", 20))):
        earlier = f.chain(
            "acme/app",
            on=gitlab,
            number=412,
            status=state,
            source="fix/payment-timeout",
            target="release/1.2",
            title="Retry payment provider calls with backoff",
            author="maria",
            age=timedelta(minutes=minutes),
            head_sha=f"{0xE1 + i:08x}" + "cd" * 16,
        )
        f.run(earlier, "build-images", label="Build images", status=state, seconds=80)
        Chain.objects.filter(pk=earlier.pk).update(superseded_by=release)
    f.run(
        release,
        "child",
        project="acme/app",
        status="pending",
        ref="fix/payment-timeout",
        is_child=True,
        strategy="async",
    )

    ok = f.chain(
        "acme/payments",
        on=gitlab,
        number=77,
        status="success",
        target="release/1.2",
        source="feat/refunds",
        title="Partial refunds",
        author="li",
        age=2 * hour,
    )
    for key in ("api", "web"):
        f.run(ok, key, project=f"acme/{key}", status="success", ref="release/1.2", seconds=180)

    mobile = f.chain(
        "acme/mobile",
        on=github,
        number=1290,
        status="canceled",
        target="release/1.2",
        source="bump-sdk",
        title="Bump SDK to 5.1",
        author="sam",
        age=5 * hour,
    )
    f.run(
        mobile,
        "ios",
        project="acme/ios-build",
        status="canceled",
        ref="release/1.2",
        seconds=300,
        error="canceled by rita",
    )
    f.run(
        mobile,
        "android",
        project="acme/android-build",
        status="success",
        ref="release/1.2",
        seconds=420,
    )

    broken = f.chain(
        "acme/infra",
        on=gitlab,
        number=31,
        status="failed",
        target="main",
        source="ci/split",
        title="Split deploy stages",
        author="omar",
        age=26 * hour,
        error=".baton.yml line 7: downstream[1].strategy: 'sometimes' is not one of "
        "depend, mirror, async",
    )
    for i in range(6):
        older = f.chain(
            "acme/app",
            on=gitlab,
            number=400 + i,
            status="success",
            target="main",
            source=f"feature/{i}",
            title=f"Routine change {i}",
            age=(30 + i * 7) * hour,
        )
        f.run(older, "api", project="acme/api", status="success", seconds=120 + i)
    return {
        "release": release,
        "broken": broken,
        "mobile": mobile,
        "repository": release.repository,
    }


# Per target: (typical seconds, spread, one failure in every n runs) for the health charts.
HISTORY = {
    "acme/api": (240, 40, 9),
    "acme/web": (420, 120, 3),
    "acme/docs": (60, 10, 0),
    "acme/ios-build": (900, 200, 5),
}


def seed_history(on: Any, days: int = 14) -> None:
    """Two weeks of finished runs triggered from acme/app, with a steady drift and a fixed
    pattern of noise (no randomness: the screenshots are the same every time)."""
    from django.utils import timezone

    from chains.models import Run

    now = timezone.now()
    for day in range(days):
        chain = f.chain(
            "acme/app",
            on=on,
            status="success",
            title=f"Nightly {day}",
            age=timedelta(days=day, hours=2),
        )
        for path, (typical, spread, every) in HISTORY.items():
            for i in range(3):
                failed = bool(every) and (day * 3 + i) % every == 0
                seconds = typical + spread * (((day * 7 + i * 3) % 5) - 2) / 2 + day * 4
                run = f.run(
                    chain,
                    f"{path.split('/')[1]}-{i}",
                    project=path,
                    status="failed" if failed else "success",
                    seconds=seconds,
                )
                end = now - timedelta(days=day, hours=2 - i * 0.5)
                Run.objects.filter(pk=run.pk).update(
                    triggered_at=end - timedelta(seconds=seconds + 3),
                    started_at=end - timedelta(seconds=seconds),
                    finished_at=end,
                )
