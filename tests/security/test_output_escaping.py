"""What Baton writes never carries hostile text as markup: no `@all`/`@here` mention, no raw
HTML or markdown from labels, keys, values or forge errors, and no `javascript:` (or any other
non-http(s)) link — in replies, the summary comment, the dashboard and the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from bots import services
from bots.commands import handlers
from bots.events import CommentEvent
from bots.forges.base import RemoteProject
from bots.markdown import ZWJ, code, link, text, truncate
from bots.summary import render, render_plan
from chains.planner import Plan, PlannedRun
from chains.policy import Verdict
from chains.safe_url import safe_url
from chains.status import Status
from tests import factories
from tests.fakes.forge import COMMIT_STATE

HOSTILE = "@all @here <img src=x onerror=alert(1)> [click](javascript:alert(1)) *b* _i_ `c` |"
BAD_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "  javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "https:evil",
    "",
]


def _assert_inert(out: str) -> None:
    for mention in ("@all", "@here"):
        assert mention not in out, out
    assert "<img" not in out and "<script" not in out
    assert "[click]" not in out and "](javascript" not in out.lower()  # text, never a link
    assert "*b*" not in out and "_i_" not in out


@pytest.mark.parametrize("url", BAD_URLS)
def test_only_http_urls_are_safe(url: str) -> None:
    assert safe_url(url) == ""
    assert link("pipeline", url) == ""


def test_http_urls_stay_links() -> None:
    assert safe_url("https://gitlab.example.com/a/b/-/pipelines/1") != ""
    assert link("pipeline", "https://x.example/p/1") == "[pipeline](<https://x.example/p/1>)"


def test_text_neutralises_mentions_html_and_markdown() -> None:
    out = text(HOSTILE)
    _assert_inert(out)
    assert f"@{ZWJ}all" in out  # still reads as "@all"
    assert "&lt;img" in out and "&#96;c&#96;" in out and "&#124;" in out


def test_code_cannot_be_broken_out_of() -> None:
    assert code("main") == "`main`"
    out = code("x` @all <b>hi</b> `y")
    _assert_inert(out)
    assert "<b>" not in out and "`" not in out


def test_truncate_keeps_whole_lines() -> None:
    out = truncate("line\n" * 1000, 200)
    assert len(out) <= 200 and out.endswith("are shown.\n")


# --- the summary comment and /baton plan ------------------------------------------------------


@pytest.mark.django_db
def test_the_summary_escapes_labels_errors_and_drops_bad_links() -> None:
    chain = factories.chain("acme/app", reason=f"opened {HOSTILE}", error=f"forge said {HOSTILE}")
    run = factories.run(
        chain,
        "api",
        label=HOSTILE,
        error=f"<b>GitLab</b> said {HOSTILE}",
        web_url="javascript:alert(1)",
        ref="main`@all`",
        status="failed",
    )
    out = render(chain, [run])
    _assert_inert(out)
    assert "](" not in out  # no link at all


@pytest.mark.django_db
def test_the_summary_keeps_http_links() -> None:
    chain = factories.chain("acme/app")
    run = factories.run(chain, "api", web_url="https://gl.example.com/acme/api/-/pipelines/9")
    assert "[pipeline](<https://gl.example.com/acme/api/-/pipelines/9>)" in render(chain, [run])


@pytest.mark.django_db
def test_the_plan_escapes_values_and_reasons() -> None:
    chain = factories.chain("acme/app", author=f"mallory {HOSTILE}")
    repository = factories.repository("acme/api")
    planned = PlannedRun(
        key="api",
        label="",
        forge=None,
        project="acme/api",
        is_child=False,
        ref="main`@here`",
        workflow=None,
        strategy="depend",
        interruptible=True,
        variables={"NOTE": f"v` {HOSTILE} `"},
    )
    from chains.planner import Change

    change = Change(
        forge="gl",
        project="acme/app",
        project_url="",
        number=1,
        url="",
        source_branch="x",
        target_branch="main",
        head_sha="ab" * 20,
        upstream_ref="refs/merge-requests/1/head",
        author=chain.author,
    )
    out = render_plan(
        change,
        Plan((planned,), excluded=(("docs", HOSTILE),)),
        [(planned, repository, "", Verdict(False, HOSTILE))],
        upstream=chain.repository,
    )
    _assert_inert(out)


# --- replies ----------------------------------------------------------------------------------


class FakeClient:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def upsert_comment(self, project: str, number: int, body: str, comment_id: Any) -> str:
        self.bodies.append(body)
        return "reply-1"

    def get_project(self, path: str) -> RemoteProject:
        """What a forge says of a project Baton knows only by name: public, as on a hook."""
        return RemoteProject(id="77", path=path, default_branch="main", web_url="", public=True)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(handlers, "forge_for", lambda forge: fake)
    monkeypatch.setattr("bots.engine.planning.forge_for", lambda forge: fake)
    return fake


@pytest.mark.django_db
def test_a_reply_never_echoes_a_mention_or_html_from_the_comment(client: FakeClient) -> None:
    forge = factories.forge()
    body = "/baton x`@all <img src=x onerror=alert(1)>`\n/baton retry `@here`"
    handlers.handle_comment(forge, CommentEvent("acme/app", 7, "alice", body, "c-1"), None)
    assert client.bodies
    for reply in client.bodies:
        _assert_inert(reply)
    assert "@alice" in client.bodies[-1]  # the commenter is still mentioned


@pytest.mark.django_db
def test_a_reply_escapes_refusals_and_forge_errors(
    client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> str:
        raise services.ActionRefused(f"GitLab said: {HOSTILE}")

    monkeypatch.setitem(handlers.HANDLERS, "status", refuse)
    forge = factories.forge()
    event = CommentEvent("acme/app", 7, "alice", "/baton status", "c-2")
    handlers.handle_comment(forge, event, None)
    _assert_inert(client.bodies[-1])


# --- dashboard and API ------------------------------------------------------------------------


@pytest.fixture
def viewer(db: None) -> Client:
    from django.contrib.auth.models import User

    from chains.models import Grant

    user = User.objects.create_user("vic", password="pw-vic-123")
    Grant.objects.create(user=user, projects="*", actions=["view"])
    client = Client()
    client.force_login(user)
    return client


def test_dashboard_pages_render_no_javascript_links(viewer: Client) -> None:
    chain = factories.chain("acme/app")
    chain.change_url = "javascript:alert(1)"
    chain.save(update_fields=["change_url"])
    run = factories.run(chain, "api", web_url="javascript:alert(document.cookie)", status="failed")
    factories.attempt(run, 1)  # its web_url starts with the run's: javascript:…-1
    run.repository.web_url = "JavaScript:alert(1)"
    run.repository.save(update_fields=["web_url"])
    for url in (f"/chains/{chain.pk}/", f"/repositories/{run.repository_id}/"):
        page = viewer.get(url)
        assert page.status_code == 200
        assert b"javascript:" not in page.content.lower(), url


def test_the_release_matrix_and_the_chain_list_show_hostile_names_as_text(viewer: Client) -> None:
    # Both build their many cells and dots in Python (dashboard/presenters.py, overview.py).
    chain = factories.chain("acme/app", target="release/1.2")
    tag = '"><img src=x onerror=alert(1)>'
    for i in range(2):  # two runs in one project: the cell names their keys too
        factories.run(
            chain,
            f"k{i}{tag}",
            label=f"label{tag}",
            project=f"acme/p{tag}",
            ref="release/1.2",
            status="failed",
            quarantine_reason=f"why{tag}",
        )
    for url in ("/releases/?ref=release/1.2", "/"):
        html = viewer.get(url).content.decode()
        assert "<img" not in html and "x onerror=alert(1)>" not in html, url
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html, url
    matrix = viewer.get("/releases/?ref=release/1.2").content.decode()
    assert "quarantined: why&quot;&gt;&lt;img" in matrix and "k1&quot;&gt;&lt;img" in matrix


def test_the_api_gives_no_javascript_urls(viewer: Client) -> None:
    chain = factories.chain("acme/app")
    chain.change_url = "javascript:alert(1)"
    chain.save(update_fields=["change_url"])
    run = factories.run(chain, "api", web_url="javascript:alert(1)")
    body = viewer.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["web_url"] is None
    detail = viewer.get(f"/api/v1/chains/{chain.pk}/")
    assert detail.json()["change_url"] is None
    assert "javascript" not in detail.content.decode()
    assert "javascript" not in viewer.get("/api/v1/chains/").content.decode()


class FakeForge:
    """Records what mirroring writes on the forge."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.comments: list[str] = []

    def budgets(self, kind: str, project: str) -> list[Any]:
        return []

    def commit_state(self, status: str) -> str:
        return COMMIT_STATE[Status(status)]  # as tests/fakes/forge.py (GitLab's states)

    def already_shows(self, shown: str | None, wanted: str) -> bool:
        return shown == wanted

    def set_commit_status(self, project: str, sha: str, **fields: Any) -> None:
        self.statuses.append(fields)

    def upsert_comment(self, project: str, number: int, body: str, comment_id: Any) -> str:
        self.comments.append(body)
        return "note-1"


@pytest.mark.django_db
def test_mirroring_posts_no_javascript_link_and_an_escaped_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bots.engine import mirroring

    fake = FakeForge()
    monkeypatch.setattr(mirroring, "forge_for", lambda forge: fake)
    monkeypatch.setattr(mirroring.throttle, "wait", lambda budgets: None)
    chain = factories.chain("acme/app", status="failed")
    factories.run(chain, "api", label=HOSTILE, web_url="javascript:alert(1)", status="failed")
    assert mirroring.mirror(chain.pk)
    run_status = next(s for s in fake.statuses if s["context"] == "baton/api")
    assert run_status["target_url"] == ""
    _assert_inert(fake.comments[-1])
