"""The ETA estimator (chains/eta.py) and the duration history it reads (chains/history.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chains import eta, history
from chains.eta import Estimate, Step, estimate
from chains.history import Spread
from chains.models import Repository, Run
from tests import factories as f

NOW = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def step(
    i: int,
    key: str,
    *,
    status: str = "queued",
    p50: float | None = 60,
    p90: float | None = None,
    depends_on: tuple[str, ...] = (),
    parent: int | None = None,
    started: float | None = None,
    waited_for: bool = True,
) -> Step:
    return Step(
        id=i,
        key=key,
        parent_id=parent,
        depends_on=depends_on,
        status=status,
        started_at=NOW - timedelta(seconds=started) if started is not None else None,
        spread=None if p50 is None else Spread(p50=p50, p90=p90 or p50 * 2, count=5),
        waited_for=waited_for,
    )


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_parallel_targets_finish_with_the_longest() -> None:
    got = estimate([step(1, "a", p50=60), step(2, "b", p50=300, p90=400)], NOW)
    assert got == Estimate(p50=at(300), p90=at(400))


def test_depends_on_adds_up_along_the_critical_path() -> None:
    steps = [
        step(1, "build", p50=100, p90=150),
        step(2, "deploy", p50=50, p90=70, depends_on=("build",)),
        step(3, "docs", p50=120, p90=130),
    ]
    assert estimate(steps, NOW) == Estimate(p50=at(150), p90=at(220))


def test_a_running_run_counts_its_elapsed_time() -> None:
    steps = [
        step(1, "build", status="running", started=80, p50=100, p90=150),
        step(2, "deploy", p50=50, p90=60, depends_on=("build",)),
    ]
    assert estimate(steps, NOW) == Estimate(p50=at(20 + 50), p90=at(70 + 60))


def test_a_run_over_its_usual_time_is_expected_now_not_in_the_past() -> None:
    got = estimate([step(1, "slow", status="running", started=500, p50=100, p90=200)], NOW)
    assert got == Estimate(p50=NOW, p90=NOW)


def test_finished_dependencies_release_at_once() -> None:
    steps = [
        step(1, "build", status="success", p50=None),
        step(2, "deploy", p50=50, depends_on=("build",)),
    ]
    assert estimate(steps, NOW).p50 == at(50)


def test_a_nested_run_starts_when_its_parent_has_finished() -> None:
    steps = [
        step(1, "a", p50=100, p90=100),
        step(2, "b", p50=30, p90=30, depends_on=("a",)),
        step(3, "c", parent=2, p50=40, p90=40),
    ]
    assert estimate(steps, NOW) == Estimate(p50=at(100 + 30 + 40), p90=at(170))


def test_a_nested_run_under_a_running_parent_waits_for_its_end() -> None:
    steps = [
        step(1, "api", status="running", started=20, p50=62, p90=70),
        step(2, "docs", parent=1, status="waiting", p50=40, p90=45),
    ]
    assert estimate(steps, NOW) == Estimate(p50=at(42 + 40), p90=at(50 + 45))


def test_depends_on_is_among_siblings_only() -> None:
    steps = [
        step(1, "x", p50=500),
        step(2, "p", status="running", started=0, p50=10),
        step(3, "y", parent=2, p50=20, depends_on=("x",)),  # no sibling "x" under p
    ]
    assert estimate(steps, NOW).p50 == at(500)


def test_no_history_means_no_estimate_and_names_the_targets() -> None:
    steps = [step(1, "a", p50=60), step(2, "new", p50=None)]
    got = estimate(steps, NOW)
    assert not got.known
    assert got.missing == ("new",)
    assert eta.describe(got) == "no estimate yet"


def test_a_dependency_without_history_also_blocks_the_estimate() -> None:
    steps = [step(1, "lib", p50=None, waited_for=False), step(2, "app", depends_on=("lib",))]
    assert estimate(steps, NOW).missing == ("lib",)


def test_async_runs_are_not_waited_for() -> None:
    steps = [step(1, "a", p50=60), step(2, "fire", p50=9000, waited_for=False)]
    assert estimate(steps, NOW).p50 == at(60)


def test_nothing_left_to_run_has_no_estimate() -> None:
    got = estimate([step(1, "a", status="success")], NOW)
    assert not got.known
    assert eta.describe(got) == ""


def test_a_cycle_gives_no_estimate_instead_of_looping() -> None:
    steps = [step(1, "a", depends_on=("b",)), step(2, "b", depends_on=("a",))]
    assert not estimate(steps, NOW).known


def test_describe() -> None:
    got = Estimate(p50=datetime(2026, 1, 1, 14, 5, tzinfo=UTC), p90=at(0).replace(minute=12))
    assert eta.describe(got, utc=True) == "expected to finish ~14:05 UTC (90 %: 14:12 UTC)"


# --- history, on the database ----------------------------------------------------------------


def green(key: str, seconds: float, *, ref: str = "main", ago: float = 0, **kw: Any) -> Run:
    end = NOW - timedelta(seconds=ago)
    return f.run(
        f.chain("acme/app", status="success"),
        key,
        project="acme/lib",
        status=kw.pop("status", "success"),
        ref=ref,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        **kw,
    )


@pytest.mark.django_db
def test_durations_are_the_last_n_successful_runs_newest_first() -> None:
    for i, seconds in enumerate([10, 20, 30, 40]):
        repo = green("api", seconds, ago=100 - i).repository_id
    green("api", 999, status="failed")
    green("api", 5, ref="develop")
    assert history.durations(repo, "main", limit=3) == [40, 30, 20]
    assert history.durations(repo, None, limit=10) == [5, 40, 30, 20, 10]
    assert history.durations(repo, "dev*") == [5]
    assert history.target_spread(repo, "main") == Spread(p50=25, p90=37, count=4)
    assert history.target_spread(repo, "nothing") is None


@pytest.mark.django_db
def test_a_reused_green_run_is_not_counted_twice() -> None:
    first = green("api", 10, ago=50)
    green("api", 10, reused_from=first)
    assert history.durations(first.repository_id, "main") == [10]


@pytest.mark.django_db
def test_chain_estimate_reads_history_in_one_query(django_assert_num_queries: Any) -> None:
    for seconds in [100, 120, 140]:
        green("build", seconds, ago=10_000)
    green("build", 5, ref="other", ago=10_000)
    chain = f.chain("acme/app")
    f.run(chain, "build", project="acme/lib", started=NOW - timedelta(seconds=20))
    f.run(chain, "docs", project="acme/lib", status="queued", ref="docs-only")
    runs = list(chain.runs.all())
    with django_assert_num_queries(1):
        got = eta.for_chain(chain, runs, now=NOW)
    assert got.missing == ("docs",)
    runs = [r for r in runs if r.key == "build"]
    assert eta.for_chain(chain, runs, now=NOW) == Estimate(p50=at(120 - 20), p90=at(136 - 20))


@pytest.mark.django_db
def test_a_finished_chain_has_no_estimate_and_costs_nothing(
    django_assert_num_queries: Any,
) -> None:
    chain = f.chain("acme/app", status="success")
    with django_assert_num_queries(0):
        assert eta.for_chain(chain, []) == Estimate()


@pytest.mark.django_db
def test_a_run_not_sent_yet_reads_the_default_branch_history() -> None:
    for seconds in [30, 50]:
        run = green("deploy", seconds, ref="trunk", ago=500)
    green("deploy", 999, ref="other", ago=400)
    Repository.objects.filter(pk=run.repository_id).update(default_branch="trunk")
    got = eta.spreads({(run.repository_id, ""), (run.repository_id, "other")})
    assert got[(run.repository_id, "")] == Spread(p50=40, p90=48, count=2)
    assert got[(run.repository_id, "other")].count == 1
