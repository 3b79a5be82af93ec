"""Live parts: an unchanged poll costs two queries and no rendering (204 for a since-cursor,
304 for If-None-Match); anything new is rendered; a finished chain stops polling (286)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.db.models import Q
from django.test import Client
from django.utils import timezone

from chains.models import Chain, Grant, Run
from dashboard import access
from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


def since(html: str) -> str:
    match = re.search(r'hx-get="[^"]*since=([0-9a-f]+|none)', html)
    assert match, "the live part polls with its cursor"
    return match.group(1)


def test_unchanged_chain_poll_is_204_in_two_queries(
    viewer_client: Client, django_assert_num_queries: Any
) -> None:
    chain = f.chain()
    f.run(chain, "api", status="running")
    cursor = since(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    # The session and the version: what the reader may view is what the page was told.
    with django_assert_num_queries(2):
        response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert response.status_code == 204 and response.content == b""


def test_a_status_change_is_rendered_with_a_new_cursor(viewer_client: Client) -> None:
    chain = f.chain()
    run = f.run(chain, "api", status="running")
    cursor = since(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    Run.objects.filter(pk=run.pk).update(status="success", finished_at=timezone.now())
    response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="chain-live"')
    assert 'data-status="success"' in html and since(html) != cursor
    assert response["ETag"] == f'"{since(html)}"'


def test_etag_and_if_none_match(viewer_client: Client, django_assert_num_queries: Any) -> None:
    chain = f.chain()
    f.run(chain, "api", status="running")
    tag = viewer_client.get(f"/chains/{chain.pk}/", headers=HX)["ETag"]
    with django_assert_num_queries(2):
        response = viewer_client.get(
            f"/chains/{chain.pk}/", headers={**HX, "If-None-Match": f"W/{tag}"}
        )
    assert response.status_code == 304 and response["ETag"] == tag


def test_a_finished_chain_stops_polling(viewer_client: Client) -> None:
    chain = f.chain(status="running")
    run = f.run(chain, "api", status="running")
    cursor = since(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    Run.objects.filter(pk=run.pk).update(status="success", finished_at=timezone.now())
    # The run is done but the chain's own status is not yet brought up to date: keep polling.
    Chain.objects.filter(pk=chain.pk).update(mirror_requested_at=timezone.now())
    response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert response.status_code == 200
    cursor = since(response.content.decode())
    Chain.objects.filter(pk=chain.pk).update(status="success", mirror_requested_at=None)
    response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()
    assert 'data-settled="true"' in response.content.decode()
    # Opened when already finished: no polling at all.
    assert "hx-trigger" not in viewer_client.get(f"/chains/{chain.pk}/").content.decode()


def test_chain_list_poll(viewer_client: Client, django_assert_num_queries: Any) -> None:
    chain = f.chain(number=1)
    run = f.run(chain, "api", status="running")
    cursor = since(viewer_client.get("/?status=running").content.decode())
    # The session and the version (computed over the chains the reader may view only, as the
    # page was told them).
    with django_assert_num_queries(2):
        assert viewer_client.get(f"/?status=running&since={cursor}", headers=HX).status_code == 204
    Run.objects.filter(pk=run.pk).update(status="success")
    response = viewer_client.get(f"/?status=running&since={cursor}", headers=HX)
    assert response.status_code == 200 and "1 / 1 finished" in response.content.decode()
    cursor = since(response.content.decode())
    f.chain(number=2)
    assert viewer_client.get(f"/?status=running&since={cursor}", headers=HX).status_code == 200


def test_release_poll(viewer_client: Client, django_assert_num_queries: Any) -> None:
    chain = f.chain(target="release/1.2")
    run = f.run(chain, "api", status="running", ref="release/1.2")
    html = viewer_client.get("/releases/?ref=release/1.2").content.decode()
    poll = re.search(r'hx-get="([^"]*since=[^"]*)"', html)
    assert poll is not None
    url = poll.group(1).replace("&amp;", "&")
    # The session and the version.
    with django_assert_num_queries(2):
        assert viewer_client.get(url, headers=HX).status_code == 204
    Run.objects.filter(pk=run.pk).update(status="failed")
    response = viewer_client.get(url, headers=HX)
    assert response.status_code == 200 and "status-failed" in response.content.decode()


def test_repository_poll(viewer_client: Client) -> None:
    chain = f.chain()
    cursor = since(viewer_client.get(f"/repositories/{chain.repository_id}/").content.decode())
    url = f"/repositories/{chain.repository_id}/?since={cursor}"
    assert viewer_client.get(url, headers=HX).status_code == 204
    f.chain()
    assert viewer_client.get(url, headers=HX).status_code == 200


def test_a_poll_without_a_signed_in_session_is_not_answered(client: Client) -> None:
    chain = f.chain()
    response = client.get(f"/chains/{chain.pk}/?since=whatever", headers=HX)
    assert response.status_code == 200 and response["HX-Redirect"].startswith("/login/")


def test_release_poll_sees_a_new_chain_for_the_ref(viewer_client: Client) -> None:
    chain = f.chain("acme/app", target="release/1.2")
    f.run(chain, "api", status="success", ref="release/1.2")
    html = viewer_client.get("/releases/?ref=release/1.2").content.decode()
    poll = re.search(r'hx-get="([^"]*)"', html.split('id="matrix"')[1])
    assert poll is not None and f"shown={chain.pk}" in poll.group(1)
    url = poll.group(1).replace("&amp;", "&")
    assert viewer_client.get(url, headers=HX).status_code == 204
    other = f.chain("acme/lib", target="main")
    f.run(other, "api", status="running", ref="release/1.2")  # a run on the ref, elsewhere
    response = viewer_client.get(url, headers=HX)
    assert response.status_code == 200 and "acme/lib" in response.content.decode()


def test_a_same_length_error_change_is_repainted(viewer_client: Client) -> None:
    """A retry message that changes but keeps its length moved no checksum term: the cursor is
    each run's ``updated_at``, which every write moves (bulk updates included)."""
    chain = f.chain()
    run = f.run(chain, "api", status="running")
    Run.objects.filter(pk=run.pk).update(error="retrying in 10 s")
    cursor = since(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    Run.objects.filter(pk=run.pk).update(error="retrying in 20 s")
    response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert response.status_code == 200 and "retrying in 20 s" in response.content.decode()
    cursor = since(response.content.decode())
    # A partial save moves it too (auto_now alone would not write it).
    run.refresh_from_db()
    run.error = "retrying in 30 s"
    run.save(update_fields=["error"])
    response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert response.status_code == 200 and "retrying in 30 s" in response.content.decode()


def test_a_same_length_error_change_moves_the_list_and_release_cursors(
    viewer_client: Client,
) -> None:
    chain = f.chain(number=1, target="release/1.2")
    run = f.run(chain, "api", status="running", ref="release/1.2", error="attempt 1 of 5")
    cursor = since(viewer_client.get("/?status=running").content.decode())
    html = viewer_client.get("/releases/?ref=release/1.2").content.decode()
    poll = re.search(r'hx-get="([^"]*since=[^"]*)"', html)
    assert poll is not None
    release_url = poll.group(1).replace("&amp;", "&")
    assert viewer_client.get(release_url, headers=HX).status_code == 204
    Run.objects.filter(pk=run.pk).update(error="attempt 2 of 5")
    assert viewer_client.get(f"/?status=running&since={cursor}", headers=HX).status_code == 200
    assert viewer_client.get(release_url, headers=HX).status_code == 200


def test_every_run_write_moves_updated_at(db: None) -> None:
    chain = f.chain()
    run = f.run(chain, "api", status="running")
    stamps = [Run.objects.get(pk=run.pk).updated_at]
    Run.objects.filter(pk=run.pk).update(status="success")
    stamps.append(Run.objects.get(pk=run.pk).updated_at)
    Run.objects.bulk_update([Run(pk=run.pk, error="x")], ["error"])
    stamps.append(Run.objects.get(pk=run.pk).updated_at)
    chain.runs.update(hooked=True)
    stamps.append(Run.objects.get(pk=run.pk).updated_at)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_a_revoked_grant_ends_the_cheap_polls_at_once(
    viewer: Any, viewer_client: Client, django_assert_num_queries: Any
) -> None:
    """Polls reuse what the page was allowed to view; a grant's change forgets it."""
    chain = f.chain()
    f.run(chain, "api", status="running")
    cursor = since(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    assert viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX).status_code == 204
    for grant in Grant.objects.filter(Q(user=viewer) | Q(team__members=viewer)):
        grant.delete()
    answer = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert answer.status_code == 404


def test_what_a_poll_reuses_is_asked_again_after_a_few_seconds(
    viewer_client: Client, django_assert_num_queries: Any, monkeypatch: Any
) -> None:
    chain = f.chain()
    f.run(chain, "api", status="running")
    cursor = since(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    later = time.monotonic() + access.SCOPE_SECONDS + 1
    monkeypatch.setattr(access.time, "monotonic", lambda: later)
    # The session, the user, the repositories and grants (asked again), the version.
    with django_assert_num_queries(5):
        response = viewer_client.get(f"/chains/{chain.pk}/?since={cursor}", headers=HX)
    assert response.status_code == 204
