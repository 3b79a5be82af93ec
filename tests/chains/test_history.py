"""Per-day history of downstream targets (chains/history.py ``daily``) and the one percentile:
the database's ``percentile_cont`` and the Python fallback give the same numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from chains import history
from chains.models import Chain, Run
from chains.status import Status
from tests import factories as f

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_percentile_interpolates_between_the_closest_ranks() -> None:
    assert history.percentile([], 0.5) is None
    assert history.percentile([7.0], 0.9) == 7.0
    assert history.percentile([60, 120, 180, 600], 0.5) == pytest.approx(150.0)
    assert history.percentile([600, 60, 180, 120], 0.9) == pytest.approx(600 - 0.3 * 420)
    assert history.percentile([1, 2, 3], 0.0) == 1 and history.percentile([1, 2, 3], 1.0) == 3
    assert history.percentile([1, 2, 3], 7) == 3  # a fraction out of 0..1 is clamped


def finished(chain: Chain, key: str, status: str, seconds: float, days_ago: int, **kw: Any) -> Run:
    run = f.run(chain, key, status=status, seconds=seconds, **kw)
    end = NOW - timedelta(days=days_ago, hours=1)
    Run.objects.filter(pk=run.pk).update(
        started_at=end - timedelta(seconds=seconds), triggered_at=end, finished_at=end
    )
    return run


@pytest.mark.django_db
def test_daily_counts_and_percentiles_per_target_and_day() -> None:
    chain = f.chain("acme/app")
    for seconds in (60, 120, 180, 600):
        finished(chain, f"api-{seconds}", Status.SUCCESS, seconds, 0, project="acme/api")
    finished(chain, "api-bad", Status.FAILED, 30, 0, project="acme/api")
    finished(chain, "api-old", Status.SUCCESS, 1000, 1, project="acme/api")
    finished(chain, "api-gone", Status.CANCELED, 5, 0, project="acme/api")  # counts as neither
    finished(chain, "api-ancient", Status.FAILED, 5, 40, project="acme/api")  # outside
    api = Run.objects.get(key="api-bad").repository_id
    per_day, window = history.daily(history.finished_runs(NOW - timedelta(days=7)))
    today, yesterday = NOW.date(), NOW.date() - timedelta(days=1)
    assert set(per_day) == {api} and set(per_day[api]) == {today, yesterday}
    day = per_day[api][today]
    assert (day.successes, day.failures) == (4, 1)
    assert day.p50 == pytest.approx(150.0) and day.p90 == pytest.approx(600 - 0.3 * 420)
    assert per_day[api][yesterday].p50 == pytest.approx(1000.0)
    assert window[api][0] == pytest.approx(180.0)  # 60, 120, 180, 600, 1000
    assert history.daily(history.finished_runs(NOW - timedelta(days=7), frozenset())) == ({}, {})


@pytest.mark.django_db
def test_the_python_fallback_agrees_with_the_database() -> None:
    for t in range(3):
        for days_ago in range(3):
            chain = f.chain("acme/app", age=timedelta(days=days_ago))
            for i in range(4):
                status = Status.FAILED if i == 0 else Status.SUCCESS
                finished(
                    chain, f"t{t}-{i}", status, 60 * (i + 1) + t, days_ago, project=f"acme/t{t}"
                )
    runs = history.finished_runs(NOW - timedelta(days=7))
    here, overall = history.daily_here(runs)
    assert len(here) == 3 and all(len(days) == 3 for days in here.values())
    if connection.vendor != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's")
    there, window = history.daily_in_database(runs)
    assert set(there) == set(here) and set(window) == set(overall)
    for pk, days in there.items():
        for date, day in days.items():
            mine = here[pk][date]
            assert (mine.successes, mine.failures) == (day.successes, day.failures)
            assert mine.p50 == pytest.approx(day.p50) and mine.p90 == pytest.approx(day.p90)
        assert overall[pk][0] == pytest.approx(window[pk][0])
        assert overall[pk][1] == pytest.approx(window[pk][1])


@pytest.mark.django_db
def test_visible_daily_counts_what_finished_runs_selects() -> None:
    """The one-query form the health page reads (one aggregate when the reader may view every
    project, the chains looked at otherwise) gives ``daily(finished_runs(...))``'s numbers."""
    shown, hidden = f.chain("acme/app"), f.chain("secret/vault")
    for i, seconds in enumerate((60, 120, 600)):
        finished(shown, f"api-{i}", Status.SUCCESS, seconds, i % 2, project="acme/api")
        finished(hidden, f"api-{i}", Status.SUCCESS, 5000 + seconds, 0, project="acme/api")
    finished(shown, "api-bad", Status.FAILED, 30, 0, project="acme/api")
    since = NOW - timedelta(days=7)
    every = frozenset(Run.objects.values_list("repository_id", flat=True)) | {
        shown.repository_id,
        hidden.repository_id,
    }
    some = every - {hidden.repository_id}
    for repositories in (None, every, some, frozenset()):
        expected = history.daily(history.finished_runs(since, repositories))
        assert history.visible_daily(since, repositories) == expected
    per_day, window = history.visible_daily(since, some)
    api = Run.objects.get(key="api-bad").repository_id
    assert sum(d.successes for d in per_day[api].values()) == 3  # not the hidden chain's runs
    assert window[api][0] == pytest.approx(120.0)
    _, everything = history.visible_daily(since, every)
    assert everything[api][0] == pytest.approx((600 + 5060) / 2)  # and the vault's three
