"""Downstream health: how long each downstream target's pipelines take (p50/p90 per day, over
successful runs) and how often they fail, over the last N days.

One aggregate query per question, whatever the number of runs and targets: on PostgreSQL
``percentile_cont`` computes the percentiles in the database; elsewhere (SQLite, `make run`'s
embedded default) the durations of the window are read once and the same percentiles (linear
interpolation, as ``percentile_cont``) are computed here.

Who sees what is the caller's to say (``repositories``: the ids the reader may view, None for
every one): a run counts only when the reader may view both its target project and the project
of the chain that triggered it. Flaky and quarantined marks come from ``marks``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from chains.models import Repository, Run
from chains.status import Status

DEFAULT_DAYS = 14
MAX_DAYS = 90
MAX_TARGETS = 30  # the busiest targets shown on one page; the API says when more were left off
MAX_ROWS = 200_000  # the fallback reads at most this many durations


def window_days(value: Any) -> int:
    """``?days=`` as a number of days between 1 and MAX_DAYS (DEFAULT_DAYS when not a number)."""
    try:
        days = int(str(value))
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return min(max(days, 1), MAX_DAYS)


@dataclass(frozen=True)
class Day:
    date: date
    successes: int = 0
    failures: int = 0
    p50: float | None = None  # seconds, of the day's successful runs
    p90: float | None = None


@dataclass
class TargetHealth:
    repository: Repository
    runs: int = 0  # finished as success or failed (canceled and skipped runs say nothing)
    failures: int = 0
    p50: float | None = None  # over the whole window
    p90: float | None = None
    days: list[Day] = field(default_factory=list)
    marks: tuple[str, ...] = ()  # "flaky", "quarantined": see ``marks``

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.runs if self.runs else None


@dataclass
class Health:
    days: int
    since: datetime
    until: datetime
    targets: list[TargetHealth]
    left_off: int = 0  # targets beyond MAX_TARGETS


def marks(repository_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """The marks of each target ("flaky": a run failed, then passed on a retry of the same
    commit; "quarantined": a quarantine is in force), in one query (chains/retrying.py,
    chains/quarantine.py)."""
    from chains import quarantine, retrying
    from chains.models import Repository

    found: dict[int, tuple[str, ...]] = {}
    rows = quarantine.with_quarantine(
        retrying.with_flakiness(Repository.objects.filter(pk__in=repository_ids))
    ).values_list("pk", "flaky_runs", "quarantine_reason")
    for pk, flaky_runs, reason in rows:
        shown = (("flaky",) if flaky_runs else ()) + (("quarantined",) if reason else ())
        if shown:
            found[pk] = shown
    return found


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), output_field=FloatField(), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """``percentile_cont`` in Python: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _runs(
    since: datetime, repositories: frozenset[int] | None, upstream: int | None
) -> QuerySet[Run]:
    runs = Run.objects.filter(
        finished_at__gte=since, status__in=[Status.SUCCESS, Status.FAILED]
    ).exclude(is_child=True)
    if upstream is not None:
        runs = runs.filter(chain__repository_id=upstream)
    if repositories is not None:
        ids = sorted(repositories)
        runs = runs.filter(repository_id__in=ids, chain__repository_id__in=ids)
    return runs


def _seconds() -> Any:
    """A run's duration in seconds: from when it started (else was triggered) to its end."""
    span = ExpressionWrapper(
        F("finished_at") - Coalesce("started_at", "triggered_at", "created_at"),
        output_field=DurationField(),
    )
    if connection.vendor == "postgresql":
        return Func(span, template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField())
    return span


def _ok() -> Q:
    return Q(status=Status.SUCCESS)


def _aggregate_in_database(runs: QuerySet[Run]) -> list[dict[str, Any]]:
    """(repository, day) rows with counts and percentiles: one query."""
    seconds = _seconds()
    rows = (
        runs.annotate(day=TruncDate("finished_at", tzinfo=UTC), seconds=seconds)
        .values("repository_id", "day")
        .annotate(
            successes=Count("pk", filter=_ok()),
            failures=Count("pk", filter=~_ok()),
            p50=Percentile("seconds", 0.5, filter=_ok()),
            p90=Percentile("seconds", 0.9, filter=_ok()),
        )
        .order_by()
    )
    return [dict(row) for row in rows]


def _durations(runs: QuerySet[Run]) -> list[tuple[int, date, str, float]]:
    """(repository, day, status, seconds) of each run: one query (the fallback's input)."""
    rows = runs.values_list("repository_id", "finished_at", "status", "started_at", "triggered_at")
    found = []
    for repository_id, finished, status, started, triggered in rows[:MAX_ROWS]:
        if finished is None:  # the window's filter excludes it; for the type checker
            continue
        begun = started or triggered or finished
        day = finished.astimezone(UTC).date()
        found.append((repository_id, day, status, max((finished - begun).total_seconds(), 0.0)))
    return found


def _window_in_database(runs: QuerySet[Run]) -> dict[int, tuple[float | None, float | None]]:
    """Percentiles per target over the whole window: one query."""
    rows = (
        runs.filter(_ok())
        .annotate(seconds=_seconds())
        .values("repository_id")
        .annotate(p50=Percentile("seconds", 0.5), p90=Percentile("seconds", 0.9))
        .order_by()
    )
    return {row["repository_id"]: (row["p50"], row["p90"]) for row in rows}


def health(
    repositories: frozenset[int] | None,
    *,
    days: int = DEFAULT_DAYS,
    upstream: int | None = None,
    now: datetime | None = None,
) -> Health:
    """The health of every downstream target the reader may view (``repositories``; None: all)
    over the last ``days`` days, or only of the targets that chains of ``upstream`` (a
    repository id) triggered: three queries on PostgreSQL, two elsewhere."""
    until = now or timezone.now()
    first_day = (until.astimezone(UTC) - timedelta(days=days - 1)).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    runs = _runs(since, repositories, upstream)
    per_day: dict[int, dict[date, Day]] = defaultdict(dict)
    overall: dict[int, tuple[float | None, float | None]] = {}
    if connection.vendor == "postgresql":
        for row in _aggregate_in_database(runs):
            per_day[row["repository_id"]][row["day"]] = Day(
                row["day"], row["successes"], row["failures"], row["p50"], row["p90"]
            )
        overall = _window_in_database(runs)
    else:
        per_day, overall = _aggregate_here(_durations(runs))
    totals = {
        pk: (sum(d.successes + d.failures for d in by_day.values()), by_day)
        for pk, by_day in per_day.items()
    }
    busiest = sorted(totals, key=lambda pk: -totals[pk][0])
    shown, left_off = busiest[:MAX_TARGETS], max(len(busiest) - MAX_TARGETS, 0)
    names = Repository.objects.select_related("forge").only(
        "id", "path", "visibility", "forge__slug", "forge__kind", "forge__name"
    )
    found = {repo.pk: repo for repo in names.filter(pk__in=shown)} if shown else {}
    flags = marks(shown) if shown else {}
    targets = []
    for pk in shown:
        if pk not in found:
            continue
        by_day = totals[pk][1]
        targets.append(
            TargetHealth(
                repository=found[pk],
                runs=totals[pk][0],
                failures=sum(d.failures for d in by_day.values()),
                p50=overall.get(pk, (None, None))[0],
                p90=overall.get(pk, (None, None))[1],
                days=[by_day.get(d, Day(d)) for d in _dates(first_day, days)],
                marks=tuple(flags.get(pk, ())),
            )
        )
    targets.sort(key=lambda t: (t.repository.forge.slug, t.repository.path))
    return Health(days, since, until, targets, left_off)


def _dates(first: date, days: int) -> Iterable[date]:
    return (first + timedelta(days=i) for i in range(days))


def _aggregate_here(
    rows: list[tuple[int, date, str, float]],
) -> tuple[dict[int, dict[date, Day]], dict[int, tuple[float | None, float | None]]]:
    """What ``_aggregate_in_database`` and ``_window_in_database`` compute, in Python."""
    ok: dict[tuple[int, date], list[float]] = defaultdict(list)
    failed: dict[tuple[int, date], int] = defaultdict(int)
    window: dict[int, list[float]] = defaultdict(list)
    for repository_id, day, status, seconds in rows:
        if status == Status.SUCCESS:
            ok[(repository_id, day)].append(seconds)
            window[repository_id].append(seconds)
        else:
            failed[(repository_id, day)] += 1
    per_day: dict[int, dict[date, Day]] = defaultdict(dict)
    for pk, day in {*ok, *failed}:
        values = ok.get((pk, day), [])
        per_day[pk][day] = Day(
            day,
            len(values),
            failed.get((pk, day), 0),
            percentile(values, 0.5),
            percentile(values, 0.9),
        )
    overall = {pk: (percentile(v, 0.5), percentile(v, 0.9)) for pk, v in window.items()}
    return per_day, overall
