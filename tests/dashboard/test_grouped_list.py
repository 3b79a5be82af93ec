"""The chain list grouped by change (issue 13 part 6): the latest chain per change, earlier ones
folded under it and hidden by default, mini status icons per target, an outcome bar, the "needs
attention" filter, query counts constant in N, and private names never shown."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from chains.models import Chain, Forge
from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


def change(on: Forge, number: int | None, *, commits: int, path: str = "acme/app") -> list[Chain]:
    """``commits`` chains of one change (or one pushed branch, ``number=None``), oldest first,
    each superseding the one before, as the engine does."""
    chains: list[Chain] = []
    for i in range(commits):
        chain = f.chain(path, on=on, number=number, age=timedelta(minutes=60 - i))
        if chains:
            Chain.objects.filter(pk__in=[c.pk for c in chains]).update(superseded_by=chain)
        chains.append(chain)
    return chains


def rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="chain-(\d+)" class="latest"', html)]


def test_one_row_per_change_the_latest_first_earlier_ones_hidden(viewer_client: Client) -> None:
    gl = f.forge("gitlab", "gl", "GitLab")
    mr = change(gl, 7, commits=3)
    push = change(gl, None, commits=2)
    html = viewer_client.get("/").content.decode()
    assert rows(html) == [mr[-1].pk, push[-1].pk]  # the latest chain of each, newest first
    assert "2 earlier chains (superseded)" in html and "1 earlier chain (superseded)" in html
    for old in [*mr[:-1], *push[:-1]]:
        assert f'id="chain-{old.pk}"' not in html  # superseded: hidden by default
    assert "1 change" not in html  # no pager on one page; the count says changes, not chains


def test_the_toggle_folds_earlier_chains_under_the_latest(viewer_client: Client) -> None:
    gl = f.forge("gitlab", "gl", "GitLab")
    mr = change(gl, 7, commits=3)
    other = change(gl, 8, commits=1)
    html = viewer_client.get("/?superseded=show").content.decode()
    assert rows(html) == [other[-1].pk, mr[-1].pk] or rows(html) == [mr[-1].pk, other[-1].pk]
    block = html.split(f'id="change-{mr[-1].pk}"')[1].split("</tbody>")[0]
    details = block.split('<details class="earlier">')[1].split("</details>")[0]
    assert "2 earlier chains of acme/app !7 (superseded)" in details
    listed = [int(pk) for pk in re.findall(r'<li id="chain-(\d+)"', details)]
    assert listed == [mr[1].pk, mr[0].pk]  # newest first
    assert details.count('<span class="tag">superseded</span>') == 2
    other_block = html.split(f'id="change-{other[-1].pk}"')[1].split("</tbody>")[0]
    assert "<details" not in other_block  # nothing earlier: nothing folded
    assert 'name="superseded" value="show" id="id_superseded" checked' in html


def test_filters_still_apply_and_pagination_counts_changes(viewer_client: Client) -> None:
    gl = f.forge("gitlab", "gl", "GitLab")
    for number in range(1, 28):
        change(gl, number, commits=2)
    first = viewer_client.get("/").content.decode()
    assert len(rows(first)) == 25 and "Page 1 of 2 · 27 changes" in first
    second = viewer_client.get("/?page=2").content.decode()
    assert len(rows(second)) == 2
    only = viewer_client.get("/?number=5").content.decode()
    assert len(rows(only)) == 1 and "acme/app !5" in only


def test_mini_status_icons_and_outcome_bar_say_it_in_words(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=3)
    f.run(chain, "build", status="success")
    f.run(chain, "deploy", status="failed", label="Deploy to staging")
    f.run(chain, "docs", status="running")
    f.run(chain, "e2e", status="canceled")
    html = viewer_client.get("/").content.decode()
    for name, status in [
        ("build", "success"),
        ("Deploy to staging", "failed"),
        ("docs", "running"),
        ("e2e", "canceled"),
    ]:
        assert f'title="{name}: {status}" aria-label="{name}: {status}"' in html
    assert "3 / 4 finished: 1 passed, 1 failed, 1 running or waiting, 1 canceled or skipped" in html
    for seg in ("success", "failed", "running", "canceled"):
        assert f'class="seg seg-{seg}" data-width="25.0"' in html


def test_needs_attention_keeps_failed_manual_and_refused(viewer_client: Client) -> None:
    gl = f.forge("gitlab", "gl", "GitLab")
    failed = f.chain("acme/app", on=gl, number=1, status="failed")
    manual = f.chain("acme/app", on=gl, number=2, status="running")
    f.run(manual, "deploy", status="manual")
    refused = f.chain("acme/app", on=gl, number=3, status="running")
    f.run(refused, "prod", status="failed", remote_id="", error="not allowed to trigger")
    fine = f.chain("acme/app", on=gl, number=4, status="running")
    f.run(fine, "build", status="running")
    green = f.chain("acme/app", on=gl, number=5, status="success")
    html = viewer_client.get("/?attention=on").content.decode()
    assert set(rows(html)) == {failed.pk, manual.pk, refused.pk}
    assert fine.pk not in rows(html) and green.pk not in rows(html)
    assert re.search(r'name="attention"[^>]*checked', html)
    everything = viewer_client.get("/").content.decode()
    assert set(rows(everything)) == {failed.pk, manual.pk, refused.pk, fine.pk, green.pk}


def test_the_api_takes_the_same_filter(manager_client: Client) -> None:
    f.chain("acme/app", number=1, status="failed")
    f.chain("acme/app", number=2, status="success")
    body = manager_client.get("/api/v1/chains/?attention=true").json()
    results = body["results"] if isinstance(body, dict) else body
    assert [c["change_number"] for c in results if "change_number" in c] in ([1], [])
    assert len(results) == 1


def test_private_targets_are_never_named_in_the_list(db: None) -> None:
    reader = f.user("vic")
    f.grant(reader, "acme/*", "view")
    gl = f.forge("gitlab", "gl", "GitLab")
    chain = f.chain("acme/app", on=gl, number=9)
    f.run(chain, "secret-deploy", project="vault/secret-infra", status="failed", label="Vault")
    f.run(chain, "docs", status="success")
    client = Client()
    client.force_login(reader)
    html = client.get("/").content.decode()
    assert 'title="a private project: failed"' in html
    assert 'title="docs: success"' in html
    for word in ("secret", "Vault", "vault"):
        assert word not in html


SIZES = [(1, 1, 1), (12, 3, 8)]


@pytest.mark.parametrize(("changes", "commits", "runs"), SIZES)
def test_query_count_does_not_grow_with_changes_commits_or_runs(
    viewer_client: Client,
    django_assert_max_num_queries: Any,
    changes: int,
    commits: int,
    runs: int,
) -> None:
    gl = f.forge("gitlab", "gl", "GitLab")
    for number in range(1, changes + 1):
        latest = change(gl, number, commits=commits)[-1]
        for j in range(runs):
            f.run(latest, f"r{j}", status="failed" if j % 2 else "success")
    # session, user, repositories and grants, version, count, page, runs, earlier counts,
    # repositories and forges for the form
    with django_assert_max_num_queries(11):
        assert viewer_client.get("/").status_code == 200
    with django_assert_max_num_queries(10):  # and the earlier chains themselves
        assert viewer_client.get("/?superseded=show&attention=on", headers=HX).status_code == 200


def test_the_poll_of_the_grouped_list_answers_204_then_repaints(
    viewer_client: Client, django_assert_num_queries: Any
) -> None:
    gl = f.forge("gitlab", "gl", "GitLab")
    first = change(gl, 4, commits=1)[0]
    html = viewer_client.get("/?superseded=show", headers=HX).content.decode()
    poll = re.search(r'hx-get="([^"]*since=[^"]*)"', html)
    assert poll is not None and "superseded=show" in poll.group(1)
    url = poll.group(1).replace("&amp;", "&")
    with django_assert_num_queries(2):
        assert viewer_client.get(url, headers=HX).status_code == 204
    newer = f.chain("acme/app", on=gl, number=4, age=timedelta(minutes=1))
    Chain.objects.filter(pk=first.pk).update(superseded_by=newer)
    repaint = viewer_client.get(url, headers=HX)
    assert repaint.status_code == 200
    body = repaint.content.decode()
    assert rows(body) == [newer.pk] and f'<li id="chain-{first.pk}"' in body
