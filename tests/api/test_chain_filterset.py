"""One ``ChainFilterSet`` serves the dashboard's chain list and ``GET /api/v1/chains/``: the same
parameters give the same chains on both, over what the reader may view only."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.filters import ChainFilterSet
from tests import factories as f
from tests.api.conftest import People, World

PARAMS: list[dict[str, object]] = [
    {},
    {"status": "failed"},
    {"status": ["failed", "success"]},
    {"project": "acme/app"},
    {"project": "secret/vault"},  # hidden from the viewer: nothing, on both
    {"forge": "gl"},
    {"forge": "gh"},
    {"search": "widget"},
    {"q": "WIDGET add"},
    {"q": "bob"},
    {"search": "acme/oth"},
    {"target_branch": "release/2"},
    {"ref": "release/2"},
    {"number": 77},
    {"change": 77},
    {"within": "1h"},
    {"created_after": "MIDDLE"},
    {"created_before": "MIDDLE"},
    {"status": "running", "forge": "gl", "search": "change"},
]


def _dashboard_ids(client: Client, params: dict[str, Any]) -> set[int]:
    html = client.get("/", params).content.decode()
    return {int(pk) for pk in re.findall(r'<tr id="chain-(\d+)"', html)}


def _api_ids(people: People, params: dict[str, object]) -> set[int]:
    body = people["viewer"].get("/api/v1/chains/", params).json()
    return {c["id"] for c in body["results"]}


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_the_dashboard_and_the_api_list_the_same_chains(
    world: World, people: People, params: dict[str, object]
) -> None:
    f.chain("acme/other", target="release/2", status="success", number=77)
    f.chain("acme/app", on=f.forge("gh", "github"), author="bob", number=5)
    f.chain("acme/app", title="Add widget", age=timedelta(hours=2))
    middle = (timezone.now() - timedelta(minutes=10)).isoformat()
    params = {k: middle if v == "MIDDLE" else v for k, v in params.items()}
    dashboard = Client()
    viewer = people.users["viewer"]
    assert viewer is not None
    dashboard.force_login(viewer)
    shown = _dashboard_ids(dashboard, params)
    assert shown == _api_ids(people, params)
    assert world.secret.pk not in shown


def test_an_id_from_the_dashboards_selects_means_the_same_as_a_path_or_slug(
    world: World, people: People
) -> None:
    app = world.app.repository
    by_id = _api_ids(people, {"project": app.pk, "forge": app.forge_id})
    assert by_id == _api_ids(people, {"project": app.path, "forge": app.forge.slug})
    assert by_id == {world.app.pk, world.mixed.pk}


def test_parsing_the_parameters_asks_the_database_nothing() -> None:
    """No database here: any query would raise (polls parse the parameters too)."""
    filters = ChainFilterSet({"project": "acme/app", "status": ["failed"], "within": "7d"})
    assert filters.is_valid()
    assert "repository" in str(filters.qs.query)
    bad = ChainFilterSet({"number": "x", "status": "exploded", "q": "ok"})
    assert set(bad.errors) == {"number", "status"}
    assert "title" in str(bad.qs.query)  # the valid part still applies (the dashboard's rule)
