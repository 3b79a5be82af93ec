"""Pagination (newest first), filters, and bad parameters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from tests.api.conftest import People, World

API = "/api/v1"


@pytest.fixture
def many(world: World) -> list[int]:
    """Seven more acme/app chains, newer than the world's, a second apart; ids newest first."""
    made = [
        f.chain("acme/app", age=timedelta(seconds=i), title=f"Seventh heaven {i}")
        for i in range(1, 8)
    ]
    return [c.pk for c in made]


def test_chains_are_paginated_newest_first(world: World, people: People, many: list[int]) -> None:
    client = people["viewer"]
    first = client.get(f"{API}/chains/", {"page_size": 3}).json()
    assert first["count"] == 9  # the seven, app and mixed
    assert [c["id"] for c in first["results"]] == many[:3]
    assert first["previous"] is None
    assert "page=2" in first["next"]
    second = client.get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == many[3:6]
    everything = client.get(f"{API}/chains/").json()
    created = [c["created_at"] for c in everything["results"]]
    assert created == sorted(created, reverse=True)
    assert client.get(f"{API}/chains/", {"page": 99}).status_code == 404


def test_page_size_is_capped(world: World, people: People) -> None:
    for i in range(3):
        f.chain("acme/app", age=timedelta(seconds=i))
    body = people["admin"].get(f"{API}/chains/", {"page_size": 10_000}).json()
    assert len(body["results"]) == body["count"] == 6


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"project": "acme/app"}, {"app", "mixed", "hub"}),
        ({"project": "acme/app", "forge": "gl"}, {"app", "mixed"}),
        ({"project": "acme/other"}, {"other"}),
        ({"forge": "gh"}, {"hub"}),
        ({"status": "failed"}, {"mixed"}),
        ({"status": ["failed", "success"]}, {"mixed", "other"}),
        ({"target_branch": "release/2"}, {"other"}),
        ({"search": "widget"}, {"app"}),
        ({"search": "WIDGET add"}, {"app"}),
        ({"search": "bob"}, {"hub"}),
        ({"search": "acme/oth"}, {"other"}),
        ({"search": "widget bob"}, set()),
        ({"search": ""}, {"app", "mixed", "other", "hub"}),
    ],
)
def test_chain_filters(
    world: World, people: People, params: dict[str, object], expected: set[str]
) -> None:
    other = f.chain("acme/other", target="release/2", status="success", number=77)
    hub = f.chain("acme/app", on=f.forge("github", "gh"), author="bob", number=5)
    names = {world.app.pk: "app", world.mixed.pk: "mixed", other.pk: "other", hub.pk: "hub"}
    body = people["viewer"].get(f"{API}/chains/", params).json()
    assert {names[c["id"]] for c in body["results"]} == expected


def test_chain_filters_by_change_sha_and_time(world: World, people: People) -> None:
    client = people["viewer"]
    assert [
        c["id"]
        for c in client.get(f"{API}/chains/", {"change": world.app.change_number}).json()["results"]
    ] == [world.app.pk]
    sha = client.get(f"{API}/chains/", {"search": world.mixed.head_sha[:10].upper()}).json()
    assert [c["id"] for c in sha["results"]] == [world.mixed.pk]
    middle = (timezone.now() - timedelta(minutes=10)).isoformat()
    after = client.get(f"{API}/chains/", {"created_after": middle}).json()
    before = client.get(f"{API}/chains/", {"created_before": middle}).json()
    assert [c["id"] for c in after["results"]] == [world.app.pk]
    assert [c["id"] for c in before["results"]] == [world.mixed.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"change": "abc"}, "change"),
        ({"change": "-1"}, "change"),
        ({"status": "exploded"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2024-13-01"}, "created_before"),
        ({"forge": "not a slug"}, "forge"),
        ({"project": "a\x00b"}, "project"),
    ],
)
def test_bad_chain_filters_are_400_naming_the_parameter(
    world: World, people: People, params: dict[str, str], field: str
) -> None:
    response = people["viewer"].get(f"{API}/chains/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_run_filters(world: World, people: People) -> None:
    client = people["viewer"]

    def keys(**params: object) -> set[str]:
        body = client.get(f"{API}/runs/", params).json()
        return {r["key"] for r in body["results"]}

    assert keys(chain=world.app.pk) == {"build", "deploy", "lib", "docs"}
    assert keys(chain=world.app.pk, status="failed") == {"lib"}
    assert keys(status=["failed", "running"]) == {"lib", "docs", None}  # None: the private one
    assert keys(project="acme/lib") == {"lib"}
    assert keys(chain=world.secret.pk) == set()
    assert client.get(f"{API}/runs/", {"chain": "x"}).status_code == 400


def test_runs_of_a_chain_come_in_tree_order(world: World, people: People) -> None:
    body = people["viewer"].get(f"{API}/runs/", {"chain": world.app.pk}).json()
    depths = [r["depth"] for r in body["results"]]
    assert depths == sorted(depths)
    detail = people["viewer"].get(f"{API}/chains/{world.app.pk}/").json()
    assert [r["key"] for r in detail["runs"]] == ["build", "lib", "docs", "deploy"]
    assert detail["runs"][3]["parent"] == world.build.pk


def test_repository_filters(world: World, people: People) -> None:
    f.repository("acme/app", f.forge("github", "gh"))
    client = people["viewer"]
    gh = client.get(f"{API}/repositories/", {"forge": "gh"}).json()
    assert [(r["forge"], r["forge_kind"], r["path"]) for r in gh["results"]] == [
        ("gh", "github", "acme/app")
    ]
    found = client.get(f"{API}/repositories/", {"search": "DOC"}).json()
    assert [r["path"] for r in found["results"]] == ["acme/docs"]
