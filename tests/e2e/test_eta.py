"""History and ETA end to end, on GitLab and on GitHub: after one chain has run, the next chain of
the same targets shows its expected finish on the chain page, in the API and in the summary
comment."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chains.models import Chain
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_github_chain import WORKFLOW
from tests.e2e.test_gitlab_chain import chain_done

pytestmark = [pytest.mark.e2e]

BATON_YML = """\
downstream:
  - {key: build, project: acme/build}
  - {key: deploy, project: acme/deploy, depends_on: [build]}
"""


def open_mr(forges: Forges, branch: str) -> dict[str, Any]:
    return forges.sandbox.open_merge_request(
        "acme/app",
        branch,
        target_branch="main",
        title=f"Change on {branch}",
        author="alice",
        files={"app.py": f"print({branch!r})"},
    )


def test_a_second_chain_shows_an_estimate(forges: Forges) -> None:
    forges.project("acme/build", running=0.8)
    forges.project("acme/deploy", running=0.8)
    forges.project("acme/app", {".baton.yml": BATON_YML, "README.md": "app"})
    first = open_mr(forges, "feature/one")
    eventually(lambda: chain_done(first["iid"]), 40, "the first chain to finish")

    # The second chain's pipelines run longer: it is still running when we look.
    forges.sandbox.set_script("acme/build", pending=0.2, running=6)
    forges.sandbox.set_script("acme/deploy", pending=0.2, running=6)
    second = open_mr(forges, "feature/two")

    def running() -> Chain | None:
        chain = Chain.objects.filter(change_number=second["iid"]).first()
        return chain if chain and chain.runs.filter(status="running").exists() else None

    chain = eventually(running, 30, "the second chain to run")
    client = Client()
    client.force_login(forges.people["alice"])
    page = client.get(f"/chains/{chain.pk}/").content.decode()
    assert '<dd id="chain-eta">expected to finish ~' in page
    body = client.get(f"/api/v1/chains/{chain.pk}/").json()
    assert body["expected_finish"] is not None
    assert body["expected_finish_p90"] >= body["expected_finish"]
    assert body["estimate"].startswith("expected to finish ~")

    def summary_with_estimate() -> str | None:
        for note in forges.notes("acme/app", second["iid"]):
            if "⏱️ expected to finish ~" in note["body"]:
                return str(note["body"])
        return None

    eventually(summary_with_estimate, 30, "the summary comment to carry the estimate")
    done = eventually(lambda: chain_done(second["iid"]), 60, "the second chain to finish")
    page = client.get(f"/chains/{done.pk}/").content.decode()
    assert 'id="chain-eta"' not in page  # finished: nothing left to estimate


GITHUB_YML = """\
downstream:
  - {key: docs, project: acme/docs, workflow: preview.yml}
  - {key: api, project: "gitlab:acme/api", depends_on: [docs]}
"""


def test_a_second_pull_request_chain_across_forges_shows_an_estimate(forges: Forges) -> None:
    forges.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW}, running=0.8)
    forges.project("acme/api", running=0.8)
    forges.repo("acme/app", {".baton.yml": GITHUB_YML})

    def open_pr(branch: str) -> dict[str, Any]:
        return forges.sandbox.open_pull_request(
            "acme/app", branch, base="main", title=branch, author="alice", files={"x.py": branch}
        )

    first = open_pr("feature/one")
    eventually(lambda: chain_done(first["number"]), 60, "the first chain to finish")
    forges.sandbox.set_run_script("acme/docs", pending=0.2, running=6)
    forges.sandbox.set_script("acme/api", pending=0.2, running=6)
    second = open_pr("feature/two")

    def running() -> Chain | None:
        chain = Chain.objects.filter(change_number=second["number"]).first()
        return chain if chain and chain.runs.filter(status="running").exists() else None

    chain = eventually(running, 30, "the second chain to run")
    client = Client()
    client.force_login(forges.people["alice"])
    assert (
        client.get(f"/api/v1/chains/{chain.pk}/")
        .json()["estimate"]
        .startswith("expected to finish ~")
    )

    def summary_with_estimate() -> bool:
        comments = forges.github_api(f"/repos/acme/app/issues/{second['number']}/comments")
        return any("⏱️ expected to finish ~" in c["body"] for c in comments)

    eventually(summary_with_estimate, 30, "the PR's summary comment to carry the estimate")
