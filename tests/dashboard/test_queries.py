"""SQL queries per page, pinned: the same for one chain as for many, one run as for many."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from chains.models import Chain
from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


def seed(chains: int, runs: int) -> Chain:
    github = f.forge("github", "gh", "GitHub")
    last = None
    for i in range(chains):
        last = f.chain(f"acme/app{i % 3}", on=github if i % 2 else None, target="release/1.2")
        parent = None
        for j in range(runs):
            run = f.run(
                last,
                f"r{j}",
                status="failed" if j % 3 else "success",
                parent=parent,
                ref="release/1.2",
                masked_variables={"TOKEN": "x"},
            )
            f.attempt(run, 1)
            parent = run if j % 2 else parent
    assert last is not None
    return last


SIZES = [(1, 1), (12, 8)]


@pytest.mark.parametrize(("chains", "runs"), SIZES)
def test_chain_list(
    viewer_client: Client, django_assert_num_queries: Any, chains: int, runs: int
) -> None:
    seed(chains, runs)
    # session, user, version, repositories and grants (what the viewer may see), count, page,
    # runs, earlier chains of the same changes, repositories, forges
    with django_assert_num_queries(11):
        assert viewer_client.get("/?ref=release/1.2&q=app").status_code == 200
    with django_assert_num_queries(9):  # a filter change: no choices for the form
        assert viewer_client.get("/?status=running", headers=HX).status_code == 200


@pytest.mark.parametrize(("chains", "runs"), SIZES)
def test_chain_detail(
    manager_client: Client, django_assert_num_queries: Any, chains: int, runs: int
) -> None:
    chain = seed(chains, runs)
    # session, user, repositories and grants (the version covers only what the reader may
    # view), version, chain, runs, attempts
    with django_assert_num_queries(8):
        assert manager_client.get(f"/chains/{chain.pk}/").status_code == 200
    # A poll with an old cursor: its version over what the page was told the reader may view.
    with django_assert_num_queries(7):
        assert manager_client.get(f"/chains/{chain.pk}/?since=old", headers=HX).status_code == 200


@pytest.mark.parametrize(("chains", "runs"), SIZES)
def test_release(
    viewer_client: Client, django_assert_num_queries: Any, chains: int, runs: int
) -> None:
    seed(chains, runs)
    # session, user, repositories and grants (what the reader may view), news for the ref,
    # latest chains, their version, chains, runs, recent refs
    with django_assert_num_queries(10):
        response = viewer_client.get("/releases/?ref=release/1.2")
    assert response.status_code == 200 and "status-success" in response.content.decode()


@pytest.mark.parametrize(("chains", "runs"), SIZES)
def test_repository(
    viewer_client: Client, django_assert_num_queries: Any, chains: int, runs: int
) -> None:
    chain = seed(chains, runs)
    # session, user, repositories and grants (what the reader may view), version, repository,
    # count, page, progress, runs there, its flakiness and quarantine; downstream health: per
    # day and per window (one pass), target names, their marks
    with django_assert_num_queries(14):
        assert viewer_client.get(f"/repositories/{chain.repository_id}/").status_code == 200


@pytest.mark.parametrize(("chains", "runs"), SIZES)
def test_unchanged_polls(
    viewer_client: Client, django_assert_num_queries: Any, chains: int, runs: int
) -> None:
    chain = seed(chains, runs)
    # Session and version: what the reader may view is what the page just asked the policy
    # (dashboard.access.scope), for a chain's page as well as the lists.
    polls = {f"/chains/{chain.pk}/": 2, "/?status=running": 2, "/releases/?ref=release/1.2": 2}
    for url, queries in polls.items():
        html = viewer_client.get(url, headers=HX).content.decode()
        poll = re.search(r'hx-get="([^"]*since=[^"]*)"', html)
        assert poll is not None
        with django_assert_num_queries(queries):
            response = viewer_client.get(poll.group(1).replace("&amp;", "&"), headers=HX)
        assert response.status_code == 204
