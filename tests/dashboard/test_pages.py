"""What each page shows: the chain list with its filters, the chain tree, the release matrix
and a repository's chains; and who may see them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/chains/1/", "/releases/", "/repositories/1/"])
def test_anonymous_visitors_are_sent_to_sign_in(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_an_expired_session_on_a_poll_redirects_the_whole_page(client: Client) -> None:
    response = client.get(
        "/?since=abc", headers={**HX, "HX-Current-URL": "http://testserver/?ref=main"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/login/?next=%2F%3Fref%3Dmain"


def test_sign_in_page_and_sign_in(client: Client, manager: object) -> None:
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">Username</label>' in page.content
    wrong = client.post("/login/", {"username": "rita", "password": "nope"})
    assert b"Please enter a correct username and password" in wrong.content
    response = client.post(
        "/login/", {"username": "rita", "password": "pw-rita-123", "next": "/releases/"}
    )
    assert response.status_code == 302 and response["Location"] == "/releases/"


def test_sign_out(manager_client: Client) -> None:
    response = manager_client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert manager_client.get("/").status_code == 302


def test_chain_list_shows_newest_first_with_progress_status_and_age(
    viewer_client: Client,
) -> None:
    old = f.chain("acme/app", number=7, status="success", age=timedelta(days=2))
    f.run(old, "api", status="success")
    new = f.chain("acme/app", number=8, status="running", title="Add x")
    f.run(new, "api", status="success")
    f.run(new, "web", status="running")
    github = f.forge("github", "gh", "GitHub")
    pr = f.chain("acme/mobile", on=github, number=9, age=timedelta(hours=1))
    html = viewer_client.get("/").content.decode()
    assert html.index("acme/app !8") < html.index("acme/mobile #9") < html.index("acme/app !7")
    assert "1 / 2 finished" in html and "1 / 1 finished" in html
    assert f'datetime="{new.created_at.isoformat()}"' in html
    assert 'aria-hidden="true">◔</span> running' in html  # an icon and a word, not colour only
    assert f'href="/chains/{pr.pk}/"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("number=8", {8}),
        ("ref=release/1.2", {9}),
        ("status=failed", {7}),
        ("q=payment", {9}),
        ("within=24h", {8, 9}),
        ("q=0000", set()),  # too short for a commit prefix, and no title matches
    ],
)
def test_chain_list_filters(viewer_client: Client, query: str, expected: set[int]) -> None:
    f.chain("acme/app", number=7, status="failed", age=timedelta(days=3))
    f.chain("acme/app", number=8, status="running")
    f.chain("acme/api", number=9, status="success", target="release/1.2", title="Fix payment")
    html = viewer_client.get(f"/?{query}").content.decode()
    shown = {n for n in (7, 8, 9) if f"!{n}</a>" in html}
    assert shown == expected
    if not expected:
        assert "No chain matches these filters" in html and "clear the filters" in html


def test_the_filter_form_shows_the_dashboards_fields_with_what_was_picked(
    viewer_client: Client,
) -> None:
    a = f.chain("acme/app", number=1)
    html = viewer_client.get(f"/?status=failed&project={a.repository_id}&number=x").content.decode()
    form = html.split('<form class="filters"')[1].split("</form>")[0]
    names = re.findall(r'name="([a-z_]+)"', form)
    assert names == [
        *("q", "project", "number", "ref", "status", "forge", "within"),
        *("attention", "superseded"),
    ]
    assert '<option value="failed" selected>' in form
    assert f'<option value="{a.repository_id}" selected>acme/app</option>' in form
    assert '<option value="">any status</option>' in form and "any time" in form
    assert 'class="field-error"' in form  # number=x: shown as invalid, and left out
    assert "acme/app !1" not in html  # status=failed still applies


def test_filters_by_project_and_forge(viewer_client: Client) -> None:
    a = f.chain("acme/app", number=1)
    github = f.forge("github", "gh", "GitHub")
    b = f.chain("acme/mobile", on=github, number=2)
    assert "#2</a>" not in viewer_client.get(f"/?project={a.repository_id}").content.decode()
    html = viewer_client.get(f"/?forge={github.pk}").content.decode()
    assert "acme/mobile #2" in html and "acme/app !1" not in html
    assert b.pk


def test_filter_change_returns_only_the_table(viewer_client: Client) -> None:
    f.chain(number=3)
    response = viewer_client.get("/?number=3", headers=HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="chain-table"')
    assert "<form" not in html and 'hx-get="/?number=3&amp;since=' in html


def test_chain_list_paginates(viewer_client: Client) -> None:
    for n in range(30):
        f.chain(number=100 + n, age=timedelta(minutes=n))
    first = viewer_client.get("/").content.decode()
    assert "Page 1 of 2" in first and "!100</a>" in first and "!129</a>" not in first
    second = viewer_client.get("/?page=2").content.decode()
    assert "!129</a>" in second and "← Newer" in second


def test_pager_links_keep_the_filters_and_drop_the_cursor(viewer_client: Client) -> None:
    for n in range(30):
        f.chain(number=100 + n, age=timedelta(minutes=n), source="a&b")
    response = viewer_client.get("/?q=a%26b&page=2&since=abc", headers=HX)
    html = response.content.decode()
    assert 'href="?q=a%26b&amp;page=1" rel="prev"' in html
    assert "since=abc" not in html.split('class="pager"')[1]


def test_empty_list_says_what_to_do(viewer_client: Client) -> None:
    html = viewer_client.get("/").content.decode()
    assert "No chains yet" in html and ".baton.yml" in html


def test_chain_detail_shows_the_tree_attempts_links_and_masked_names(
    viewer_client: Client,
) -> None:
    chain = f.chain(status="failed")
    build = f.run(chain, "build", status="success", masked_variables={"TOKEN": "hunter2"})
    web = f.run(chain, "web", status="failed", parent=build, error="job e2e exited 1", attempt=2)
    f.attempt(web, 1, "failed", "lint exited 2")
    f.run(chain, "docs", status="running", parent=web)
    f.run(chain, "api", status="success")
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    order = [html.index(f'data-key="{key}"') for key in ("build", "web", "docs", "api")]
    assert order == sorted(order)  # children right under their parent
    # web is build's only child, and build has a sibling below it
    assert '<span class="g g-pipe"></span><span class="g g-elbow"></span>' in html
    assert "triggered by web" in html  # the tree in words for screen readers
    assert "job e2e exited 1" in html and "lint exited 2" in html and "1 earlier" in html
    assert web.web_url in html
    assert "TOKEN" in html and "••••" in html and "hunter2" not in html
    assert "retrying and canceling it need a grant" in html
    assert "<form" not in html.split('id="chain-live"')[1]  # no buttons for a viewer


def test_chain_error_is_prominent(viewer_client: Client) -> None:
    chain = f.chain(status="failed", error=".baton.yml line 3: downstream[0].strategy: bad")
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert 'class="chain-error" role="alert"' in html and "line 3" in html
    assert "push a commit" in html


def test_missing_chain_is_404(viewer_client: Client) -> None:
    assert viewer_client.get("/chains/999/").status_code == 404


def test_staff_see_the_actions(manager_client: Client) -> None:
    chain = f.chain(status="failed")
    failed = f.run(chain, "api", status="failed")
    running = f.run(chain, "web", status="running")
    html = manager_client.get(f"/chains/{chain.pk}/").content.decode()
    for action in ("retry-failed", "cancel", "rerun"):
        assert f'hx-post="/chains/{chain.pk}/{action}/"' in html
    assert f'hx-post="/runs/{failed.pk}/retry/"' in html
    assert f'hx-post="/runs/{running.pk}/cancel/"' in html
    assert f'hx-post="/runs/{running.pk}/retry/"' not in html
    assert 'hx-disabled-elt="find button"' in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_github_chains_use_github_words(viewer_client: Client) -> None:
    github = f.forge("github", "gh", "GitHub")
    chain = f.chain("acme/mobile", on=github, number=5)
    f.run(chain, "ios")
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert "Pull request" in html and "#5 on GitHub" in html and "workflow run #" in html


def test_release_matrix(viewer_client: Client) -> None:
    older = f.chain("acme/app", number=1, target="release/1.2", age=timedelta(hours=2))
    f.run(older, "api", status="failed", ref="release/1.2")
    latest = f.chain("acme/app", number=2, target="release/1.2", status="success")
    f.run(latest, "api", project="acme/api", status="success", ref="release/1.2")
    f.run(latest, "web", project="acme/web", status="running", ref="release/1.2")
    other = f.chain("acme/lib", number=3, target="main")
    f.run(other, "api", project="acme/api", status="canceled", ref="release/1.2")
    f.chain("acme/unrelated", number=4, target="main")
    html = viewer_client.get("/releases/?ref=release/1.2").content.decode()
    assert "2 projects with chains for <code>release/1.2</code>" in html
    assert "acme/app !2" in html and "acme/app !1<" not in html  # the latest chain only
    assert "acme/lib !3" in html  # it ran something on the ref
    assert "acme/unrelated" not in html
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert head.index("acme/api") < head.index("acme/web")
    assert "status-canceled" in html and "status-running" in html


def test_push_and_tag_chains_show_their_ref_in_the_release_view_and_on_their_page(
    viewer_client: Client,
) -> None:
    tag = f.chain(
        "acme/app",
        number=None,
        target="v1.2.0",
        upstream_ref="refs/tags/v1.2.0",
        trigger_action="tag",
    )
    f.run(tag, "publish", project="acme/web", status="success", ref="main")
    branch = f.chain(
        "acme/lib",
        number=None,
        target="main",
        upstream_ref="refs/heads/main",
        trigger_action="push",
        source="main",
    )
    html = viewer_client.get("/releases/?ref=v1.2.0").content.decode()
    assert "acme/app tag v1.2.0" in html and "acme/lib" not in html
    assert '<option value="v1.2.0">' in viewer_client.get("/releases/").content.decode()
    page = viewer_client.get(f"/chains/{branch.pk}/").content.decode()
    assert "acme/lib branch main" in page
    assert "Merge request</dt>" not in page  # there is no change to link to


def test_release_page_without_a_ref_and_with_an_unknown_one(viewer_client: Client) -> None:
    f.chain(target="release/2.0")
    html = viewer_client.get("/releases/").content.decode()
    assert "No branch or tag picked yet" in html and '<option value="release/2.0">' in html
    html = viewer_client.get("/releases/?ref=release/9").content.decode()
    assert "Nothing has run for" in html and "must match exactly" in html


def test_repository_page(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=4)
    f.run(chain, "api", project="acme/api")
    api = f.repository("acme/api")
    html = viewer_client.get(f"/repositories/{chain.repository_id}/").content.decode()
    assert "acme/app !4" in html and "Chains started here" in html
    html = viewer_client.get(f"/repositories/{api.pk}/").content.decode()
    assert "No chain has started in this repository yet" in html
    assert f"chain {chain.pk}</a>" in html  # what Baton triggered there
    assert viewer_client.get("/repositories/999/").status_code == 404
