"""Query counts are pinned, and do not grow with the number of rows shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chains.models import Chain
from tests import factories as f
from tests.api.conftest import People, World

API = "/api/v1"


def grow(n: int) -> Chain:
    """``n`` more chains, the last one with ``n`` runs (half in a private project), each with
    an attempt, and ``n`` more repositories."""
    last = f.chain("acme/app")
    for i in range(n):
        last = f.chain("acme/app")
        f.repository(f"acme/extra-{n}-{i}")
    for i in range(n):
        run = f.run(
            last,
            f"r{i}",
            project=f"secret/r{i}" if i % 2 else None,
            masked_variables={"TOKEN": "x"},
            attempt=2,
        )
        f.attempt(run, 1)
    return last


URLS: dict[str, Callable[[Chain], str]] = {
    "chains": lambda c: f"{API}/chains/",
    "chain": lambda c: f"{API}/chains/{c.pk}/",
    "runs": lambda c: f"{API}/runs/",
    "runs of a chain": lambda c: f"{API}/runs/?chain={c.pk}",
    "run": lambda c: f"{API}/runs/{c.runs.last().pk}/",  # type: ignore[union-attr]
    "repositories": lambda c: f"{API}/repositories/",
}

# token, repositories, grants (not for a superuser), then: count + page, or object (+ prefetch)
PINNED = {
    "chains": 5,
    "chain": 6,  # + the targets' duration history for the ETA (one query, chains/eta.py)
    "runs": 5,
    "runs of a chain": 5,
    "run": 5,
    "repositories": 5,
}


def count(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("what", sorted(URLS))
@pytest.mark.parametrize("persona", ["viewer", "admin"])
def test_reads_take_a_fixed_number_of_queries(
    world: World,
    people: People,
    what: str,
    persona: str,
    django_assert_max_num_queries: Any,
) -> None:
    client = people[persona]
    few = count(client, URLS[what](grow(2)))
    many = count(client, URLS[what](grow(25)))
    assert few == many
    url = URLS[what](grow(3))
    with django_assert_max_num_queries(PINNED[what] - (persona == "admin")):
        client.get(url)


def test_session_reads_take_one_more(world: World, people: People) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(people.users["viewer"])
    assert count(client, f"{API}/chains/{world.app.pk}/") == PINNED["chain"] + 1  # session+user


def test_an_action_is_bounded(
    world: World,
    people: People,
    django_assert_max_num_queries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=False),
        django_assert_max_num_queries(18),  # + the chain settled: lock, read its runs, write
    ):
        response = people["operator"].post(f"{API}/runs/{world.lib.pk}/retry/")
    assert response.status_code == 202
