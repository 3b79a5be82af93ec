"""People steer from comments on either forge, under the same policy as everywhere; a chain only
triggers what the person it runs for may trigger."""

from __future__ import annotations

from typing import Any

import pytest

from chains.models import AuditEvent, Chain, Grant
from tests.e2e.conftest import Forges, eventually
from tests.e2e.test_github_chain import WORKFLOW, open_pr
from tests.e2e.test_gitlab_chain import chain_done, open_mr

pytestmark = [pytest.mark.e2e]


def reply(forges: Forges, project: str = "acme/app", iid: int = 1) -> str:
    """The body of Baton's reply, once it has finished working."""
    bodies = [n["body"] for n in forges.notes(project, iid) if "baton:reply" in n["body"]]
    return bodies[-1] if bodies and "working on" not in bodies[-1] else ""


def test_retry_failed_by_a_permitted_person_retries_only_the_failed_runs(forges: Forges) -> None:
    forges.project("acme/api", queue=["failed", "success"])
    forges.project("acme/web")
    open_mr(forges, "downstream: [{key: api, project: acme/api}, {key: web, project: acme/web}]\n")
    chain = eventually(chain_done, 40)
    assert chain.runs.get(key="api").status == "failed"
    forges.person("carol", projects="acme/*", actions=["view", "retry"])
    forges.sandbox.comment("acme/app", 1, "Flaky, sorry.\n/baton retry failed", author="carol")
    text = eventually(lambda: reply(forges), 30, "Baton's reply")
    assert "Retrying `api`." in text
    eventually(lambda: chain.runs.get(key="api").status == "success", 40)
    assert chain.runs.get(key="web").attempt == 1
    assert len(forges.sandbox.requests(method="POST", path="/retry")) == 1
    audit = AuditEvent.objects.get(action="run.retry")
    assert (audit.actor, audit.surface) == ("carol", "comment")


def test_the_same_command_from_an_outsider_is_refused_in_words(forges: Forges) -> None:
    forges.project("acme/api", outcome="failed")
    open_mr(forges, "downstream: [{key: api, project: acme/api}]\n")
    eventually(chain_done, 40)
    forges.sandbox.comment("acme/app", 1, "/baton retry failed", author="mallory")
    text = eventually(lambda: reply(forges), 30, "Baton's reply")
    # mallory may not view acme/api (a private project): the refusal does not name it.
    assert "Not done: mallory may not retry a private project this touches" in text
    assert "acme/api" not in text
    assert "not linked to a Baton user" in text
    assert forges.sandbox.requests(method="POST", path="/retry") == []


def test_plan_names_the_target_its_author_may_not_trigger(forges: Forges) -> None:
    dave = forges.person("dave")
    Grant.objects.create(user=dave, projects="acme/app", actions=["view"])
    Grant.objects.create(user=dave, projects="acme/api", actions=["trigger"])
    forges.project("acme/api")
    forges.project("acme/secret")
    forges.project(
        "acme/app",
        {
            ".baton.yml": """\
variables:
  TOKEN: {value: "hunter2", masked: true}
downstream:
  - {key: api, project: acme/api}
  - {key: secret, project: acme/secret, depends_on: api}
  - {key: tags, project: acme/tags, on: [tag]}
"""
        },
    )
    forges.sandbox.open_merge_request(
        "acme/app",
        "feature/d",
        target_branch="main",
        title="Dave's",
        author="dave",
        files={"d": "1"},
    )
    chain = eventually(chain_done, 40)
    runs = {r.key: r for r in chain.runs.all()}
    assert runs["api"].status == "success"
    assert runs["secret"].status == "failed"
    assert runs["secret"].error == (
        "dave may not trigger acme/secret: no grant gives dave trigger on acme/secret"
    )
    assert forges.sandbox.pipelines("acme/secret") == []
    forges.sandbox.comment("acme/app", 1, "/baton plan", author="dave")
    text = eventually(lambda: reply(forges), 30, "Baton's reply")
    assert "| secret | acme/secret |" in text
    assert "❌ no grant gives dave trigger on acme/secret" in text
    assert "✅ dave may trigger acme/api" in text
    assert "TOKEN=••••" in text and "hunter2" not in text
    assert "`tags`: runs on tag, not on merge_request" in text


def test_help_points_out_a_mistake_and_baton_ignores_its_own_words(forges: Forges) -> None:
    forges.project("acme/app", {".baton.yml": "downstream: []\n"})
    forges.sandbox.open_merge_request(
        "acme/app", "f", target_branch="main", author="alice", files={"a": "1"}
    )
    forges.sandbox.comment("acme/app", 1, "/baton deploy now please\n/baton help", author="alice")
    text = eventually(lambda: reply(forges), 30, "Baton's reply")
    assert "`/baton deploy now please`: `deploy` is not a command" in text
    assert text.count("| `/baton plan` |") == 2  # the help, twice: for the mistake and for help
    replies = [n for n in forges.notes("acme/app", 1) if "baton:reply" in n["body"]]
    assert len(replies) == 1  # acknowledged, then edited in place; its own note is not a command


def test_run_by_comment_starts_a_chain_for_the_commenter_on_a_pull_request(
    forges: Forges,
) -> None:
    forges.repo("acme/docs", {".github/workflows/preview.yml": WORKFLOW})
    forges.project("acme/api")
    open_pr(
        forges,
        "downstream:\n  - {key: docs, project: acme/docs, workflow: preview.yml}\n"
        "  - {key: api, project: gitlab:acme/api}\n",
    )
    first = eventually(chain_done, 60)
    forges.sandbox.comment_pull_request("acme/app", 1, "/baton run docs", author="alice")
    second = eventually(lambda: Chain.objects.exclude(pk=first.pk).first(), 30)
    assert [r.key for r in second.runs.all()] == ["docs"]
    assert second.reason == "re-run by alice"
    comments = forges.github_api("/repos/acme/app/issues/1/comments")
    assert any("Starting docs on the latest commit" in c["body"] for c in comments)


def test_forge_accounts_are_linked_by_their_public_email(forges: Forges) -> None:
    from django.contrib.auth import get_user_model

    from chains.models import Identity

    erin = get_user_model().objects.create_user("erin.b", "erin@example.com", "pw")
    Grant.objects.create(user=erin, projects="*", actions=["view", "trigger"])
    forges.project("acme/api")
    forges.project("acme/app", {".baton.yml": "downstream: [{project: acme/api}]\n"})
    # Like GitLab, the sandbox shows no e-mail unless the user made one public; erin's forge
    # name is "erin" and she did.
    forges.sandbox.set_user("erin", public_email="erin@example.com")
    forges.sandbox.open_merge_request(
        "acme/app", "f", target_branch="main", author="erin", files={"a": "1"}
    )
    chain = eventually(chain_done, 40)
    assert chain.runs.get().status == "success"
    identity = Identity.objects.get(forge=forges.forge, username="erin")
    assert (identity.user, identity.linked_by) == (erin, "email")
    assert AuditEvent.objects.filter(action="identity.link").count() == 1


def test_a_forge_may_fall_back_on_its_own_permissions(forges: Forges) -> None:
    forges.forge.forge_permissions = True
    forges.forge.save()
    forges.project("acme/api")
    forges.sandbox.set_members("acme/api", {"frank": 30})  # Developer
    forges.project("acme/ops")
    forges.sandbox.set_members("acme/ops", {"frank": 20})  # Reporter: not enough
    forges.project(
        "acme/app", {".baton.yml": "downstream: [{project: acme/api}, {project: acme/ops}]\n"}
    )
    forges.sandbox.open_merge_request(
        "acme/app", "f", target_branch="main", author="frank", files={"a": "1"}
    )
    runs = {r.key: r for r in eventually(chain_done, 40).runs.all()}
    assert runs["api"].status == "success"
    assert runs["ops"].status == "failed"
    assert "frank has no write access to acme/ops on Sandbox GitLab" in runs["ops"].error


def test_the_dashboard_shows_what_a_change_would_trigger(forges: Forges, client: Any) -> None:
    dave = forges.person("dave")
    Grant.objects.create(user=dave, projects="acme/*", actions=["view"])
    Grant.objects.create(user=dave, projects="acme/api", actions=["trigger"])
    forges.project("acme/api")
    forges.project(
        "acme/app",
        {
            ".baton.yml": """\
variables: {TOKEN: {value: "hunter2", masked: true}}
downstream:
  - {key: api, project: acme/api}
  - {key: web, project: acme/web, depends_on: api}
"""
        },
    )
    forges.sandbox.open_merge_request(
        "acme/app", "f", target_branch="main", author="dave", files={"a": "1"}
    )
    chain = eventually(chain_done, 40)
    client.force_login(dave)
    response = client.get(f"/repositories/{chain.repository_id}/changes/1/plan/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "with dave" in html and "permissions" in html
    assert "no grant gives dave trigger on acme/web" in html
    assert '<dt><code>TOKEN</code></dt><dd class="muted">masked</dd>' in html
    assert "hunter2" not in html and "acme/app !1 would trigger" in html
    outsider = forges.person("olga")
    client.force_login(outsider)
    assert client.get(f"/repositories/{chain.repository_id}/changes/1/plan/").status_code == 404
