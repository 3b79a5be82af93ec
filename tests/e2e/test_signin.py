"""Sign in with a sandbox GitLab and a sandbox GitHub account in Chromium, then trigger with a
grant that names the person's GitLab group / GitHub team: before signing in the same person is
refused as "not linked to a Baton user"."""

from __future__ import annotations

from typing import Any

import pytest

from chains.models import Grant, Identity
from tests import signin_setup
from tests.e2e.conftest import Forges, eventually
from tests.e2e.dashboard_browser import chromium, require_browser
from tests.e2e.test_github_chain import WORKFLOW
from tests.e2e.test_gitlab_chain import chain_done

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def signin_forges(
    forges: Forges, live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Forges:
    require_browser()
    signin_setup.configure(forges.sandbox, live_server.url, settings, monkeypatch)
    return forges


def sign_in_with_forge(baton_url: str, sandbox_url: str, forge: str, username: str) -> str:
    """Click "Sign in with <forge>" on Baton's sign-in page, authorize on the sandbox forge's
    page as ``username``; returns the text of the page Baton lands on."""
    with chromium() as context:
        page = context.new_page()
        page.goto(f"{baton_url}/login/")
        page.get_by_role("button", name=f"Sign in with {forge}").click()
        page.wait_for_url(f"{sandbox_url}/**authorize**")
        assert f"Sandbox {forge}" in page.content()
        page.fill("#username", username)
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{baton_url}/")
        text: str = page.content()
        return text


def test_gitlab_sign_in_then_a_merge_request_triggers_through_the_group_grant(
    signin_forges: Forges, live_server: Any
) -> None:
    forges = signin_forges
    forges.sandbox.set_group_member("acme/platform", "dora", access_level=30)
    Grant.objects.create(
        forge=forges.forge,
        forge_group="acme/platform",
        projects="acme/*",
        actions=["view", "trigger"],
    )
    landed = sign_in_with_forge(live_server.url, forges.sandbox.base_url, "GitLab", "dora")
    assert "dora" in landed
    identity = Identity.objects.get(forge=forges.forge, username="dora")
    assert identity.linked_by == "signin" and identity.email == "dora@example.com"

    forges.project("acme/api")
    forges.project("acme/app", {".baton.yml": "downstream: [{key: api, project: acme/api}]\n"})
    forges.sandbox.open_merge_request(
        "acme/app",
        "feature/d",
        target_branch="main",
        title="Dora's change",
        author="dora",
        files={"d.py": "d = 1\n"},
    )
    chain = eventually(chain_done, 60, "the chain to finish")
    run = chain.runs.get(key="api")
    assert (run.status, run.error) == ("success", "")
    assert len(forges.sandbox.pipelines("acme/api")) == 1


def test_github_sign_in_then_a_baton_run_comment_triggers_through_the_team_grant(
    signin_forges: Forges, live_server: Any
) -> None:
    forges = signin_forges
    forges.sandbox.set_team_member("acme", "release", "gus")
    Grant.objects.create(
        forge=forges.github_forge,
        forge_group="acme/release",
        projects="acme/*",
        actions=["view", "trigger"],
    )
    forges.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW})
    forges.repo(
        "acme/app",
        {".baton.yml": "downstream: [{key: docs, project: acme/docs, workflow: preview.yml}]\n"},
    )
    forges.sandbox.open_pull_request(
        "acme/app",
        "feature/g",
        base="main",
        title="Gus's change",
        author="gus",
        files={"g.py": "g = 1\n"},
    )
    # Not signed in yet: gus is nobody to Baton, so his pull request triggers nothing.
    refused = eventually(chain_done, 60, "the refused chain")
    assert "not linked to a Baton user" in refused.runs.get(key="docs").error
    assert forges.sandbox.workflow_runs("acme/docs") == []

    landed = sign_in_with_forge(live_server.url, forges.sandbox.base_url, "GitHub", "gus")
    assert "gus" in landed
    forges.sandbox.comment_pull_request("acme/app", 1, "/baton run", author="gus")

    def triggered() -> Any:
        chain = chain_done()
        return chain if chain is not None and chain.pk != refused.pk else None

    chain = eventually(triggered, 60, "the chain /baton run started")
    run = chain.runs.get(key="docs")
    assert (run.status, run.error) == ("success", "")
    assert len(forges.sandbox.workflow_runs("acme/docs")) == 1
