"""A GitHub App forge end to end: Baton mints its own installation tokens, keeps working across
token expiries (the sandbox's hour passes in 3 s), reports with check runs, and one forge row
serves two organisations (two installations of the App)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model

from chains.models import AppInstallation, Chain, Forge, Grant, Identity
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, serve_in_thread
from tests.e2e.conftest import HOOK_SECRET, Worker, eventually
from tests.e2e.test_gitlab_chain import done

pytestmark = [pytest.mark.e2e]

HOUR = 3.0  # real seconds in the sandbox's hour: installation tokens live this long
SCALE = 3600 / HOUR
WORKFLOW = """\
name: Preview
run-name: "Preview (baton ${{ inputs.BATON_RUN_NONCE }})"
on:
  workflow_dispatch:
    inputs:
      UPSTREAM_REF: {required: false}
      BATON_RUN_ID: {required: false}
      BATON_RUN_NONCE: {required: false}
jobs:
  preview: {runs-on: ubuntu-latest, steps: [{run: echo preview}]}
"""


@pytest.fixture(scope="module")
def app_server() -> Iterator[SandboxServer]:
    server = serve_in_thread(port=0, time_scale=SCALE)
    yield server
    server.shutdown()


class AppWorld:
    def __init__(self, server: SandboxServer, baton_url: str) -> None:
        self.sandbox = SandboxClient(server.url)
        self.sandbox.reset()
        self.api = f"{server.url}/api/v3"
        self.hook_url = f"{baton_url}/hooks/github-app/"
        self.app = self.sandbox.register_github_app("baton-app")
        self.forge = Forge.objects.create(
            kind="github",
            slug="github-app",
            name="GitHub App",
            api_url=self.api,
            webhook_secret=HOOK_SECRET,
            app_id=self.app["id"],
            app_private_key=self.app["private_key"],
            app_installation=True,
        )
        alice = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
        Identity.objects.create(forge=self.forge, username="alice", user=alice)
        Grant.objects.create(
            user=alice, projects="*", actions=["view", "trigger", "retry", "cancel"]
        )

    def install(self, account: str, repositories: list[str] | None = None) -> int:
        return int(self.sandbox.install_github_app(self.app["id"], account, repositories)["id"])

    def repo(self, full_name: str, files: dict[str, str]) -> None:
        self.sandbox.create_github_repo(
            full_name,
            files=files,
            hooks=[{"url": self.hook_url, "secret": HOOK_SECRET, "events": ["*"]}],
        )
        # Simulated seconds: 0.2 s and 0.6 s of real time.
        self.sandbox.set_run_script(full_name, pending=0.2 * SCALE, running=0.6 * SCALE)

    def check_runs(self, full_name: str, sha: str) -> dict[str, str]:
        """The latest conclusion of each check run on ``sha`` (read with a fresh App token)."""
        token = requests.post(
            f"{self.api}/app/installations/{self._installation_of(full_name)}/access_tokens",
            headers={"Authorization": f"Bearer {self._jwt()}"},
            timeout=10,
        ).json()["token"]
        data = requests.get(
            f"{self.api}/repos/{full_name}/commits/{sha}/check-runs",
            headers={"Authorization": f"token {token}"},
            params={"per_page": 100},
            timeout=10,
        ).json()
        latest: dict[str, str] = {}
        for run in sorted(data["check_runs"], key=lambda r: r["id"]):
            latest[run["name"]] = run["conclusion"] or run["status"]
        return latest

    def _jwt(self) -> str:
        import jwt

        now = int(time.time())
        claims = {"iat": now - 60, "exp": now + 300, "iss": str(self.app["id"])}
        return jwt.encode(claims, self.app["private_key"], algorithm="RS256")

    def _installation_of(self, full_name: str) -> int:
        owner, name = full_name.split("/")
        return int(
            requests.get(
                f"{self.api}/repos/{owner}/{name}/installation",
                headers={"Authorization": f"Bearer {self._jwt()}"},
                timeout=10,
            ).json()["id"]
        )

    def mints(self) -> int:
        return len(self.sandbox.requests(method="POST", path="/access_tokens"))


@pytest.fixture
def world(
    app_server: SandboxServer, idle_worker: Worker, live_server: Any, transactional_db: None
) -> AppWorld:
    return AppWorld(app_server, live_server.url)


def finished(sha: str) -> Chain | None:
    return done(Chain.objects.filter(head_sha=sha, superseded_by__isnull=True).first())


def test_an_app_forge_keeps_working_across_three_token_expiries(world: AppWorld) -> None:
    world.install("acme")
    world.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW})
    world.repo(
        "acme/app",
        {".baton.yml": "downstream: [{key: docs, project: acme/docs, workflow: preview.yml}]\n"},
    )
    pr = world.sandbox.open_pull_request(
        "acme/app", "feature/x", base="main", title="x", author="alice", files={"x": "1\n"}
    )
    shas = [pr["head"]["sha"]]
    for lap in range(4):
        chain = eventually(lambda: finished(shas[-1]), 60, f"chain {lap + 1} to finish")
        assert {run.key: run.status for run in chain.runs.all()} == {"docs": "success"}
        assert world.check_runs("acme/app", shas[-1]) == {
            "baton/docs": "success",
            "baton": "success",
        }
        if lap == 3:
            break
        time.sleep(HOUR * 1.1)  # every token Baton holds has expired by now
        shas.append(
            world.sandbox.push_pull_request("acme/app", 1, {"x": f"{lap + 2}\n"}, author="alice")
        )
    # Baton minted a token for each lap instead of using an expired one: GitHub refused none.
    baton_mints = world.mints() - 4  # the test's own reads mint one token per check
    assert baton_mints >= 4
    refused = [r for r in world.sandbox.requests(path="/repos/") if r["status"] == 401]
    assert refused == []
    (row,) = AppInstallation.objects.filter(forge=world.forge)
    assert row.account in ("", "acme") and row.token


def test_one_forge_row_serves_two_organisations(world: AppWorld) -> None:
    acme = world.install("acme")
    beta = world.install("beta", ["beta/site"])
    world.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW})
    world.repo("beta/site", {".github/workflows/preview.yml": WORKFLOW})
    world.repo(
        "acme/app",
        {
            ".baton.yml": "downstream:\n"
            "  - {key: docs, project: acme/docs, workflow: preview.yml}\n"
            "  - {key: site, project: beta/site, workflow: preview.yml}\n"
        },
    )
    pr = world.sandbox.open_pull_request(
        "acme/app", "feature/y", base="main", title="y", author="alice", files={"y": "1\n"}
    )
    chain = eventually(lambda: finished(pr["head"]["sha"]), 60, "the chain to finish")
    assert {run.key: run.status for run in chain.runs.all()} == {
        "docs": "success",
        "site": "success",
    }
    # Each organisation's workflow was dispatched with its own installation's token (the
    # sandbox answers 404 to a token of the other installation).
    assert len(world.sandbox.workflow_runs("beta/site")) == 1
    assert len(world.sandbox.workflow_runs("acme/docs")) == 1
    installations = set(
        AppInstallation.objects.filter(forge=world.forge).values_list("installation_id", flat=True)
    )
    assert installations == {acme, beta}
    assert world.check_runs("acme/app", pr["head"]["sha"]) == {
        "baton/docs": "success",
        "baton/site": "success",
        "baton": "success",
    }
