"""The chain detail API's estimate fields (chains/eta.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.api.conftest import People, World
from tests.dashboard.test_eta import history

pytestmark = pytest.mark.django_db


def test_the_api_gives_the_estimate(world: World, people: People) -> None:
    history("docs", [100, 200, 300])
    body = people["viewer"].get(f"/api/v1/chains/{world.app.pk}/").json()
    started = world.docs.started_at
    assert started is not None
    assert body["expected_finish"] is not None
    expected = max(timezone.now(), started + timedelta(seconds=200))  # the median of 3
    got = datetime.fromisoformat(body["expected_finish"])
    assert abs((got - expected).total_seconds()) < 60
    assert body["expected_finish_p90"] >= body["expected_finish"]
    assert body["estimate"].startswith("expected to finish ~")
    assert body["estimate"].endswith(" UTC)")


def test_the_api_says_when_there_is_no_estimate(world: World, people: People) -> None:
    body = people["viewer"].get(f"/api/v1/chains/{world.app.pk}/").json()
    assert (body["expected_finish"], body["expected_finish_p90"]) == (None, None)
    assert body["estimate"] == "no estimate yet"
    done = people["viewer"].get(f"/api/v1/chains/{world.mixed.pk}/").json()
    assert done["estimate"] == ""
