"""Downstream health: how long each downstream target's pipelines take (p50/p90 per day, over
successful runs) and how often they fail, over the last N days, for the targets the reader may
view, busiest first, with their flaky and quarantined marks.

The numbers are ``chains.history.visible_daily``'s (one query, whatever the number of runs and
targets). Who sees what is the caller's to say (``repositories``: the ids the reader
may view, None for every one): a run counts only when the reader may view both its target
project and the project of the chain that triggered it. Flaky and quarantined marks come from
``marks``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from chains import history
from chains.history import Day
from chains.models import Repository

DEFAULT_DAYS = 14
MAX_DAYS = 90
MAX_TARGETS = 30  # the busiest targets shown on one page; the API says when more were left off


def window_days(value: Any) -> int:
    """``?days=`` as a number of days between 1 and MAX_DAYS (DEFAULT_DAYS when not a number)."""
    try:
        days = int(str(value))
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return min(max(days, 1), MAX_DAYS)


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


def health(
    repositories: frozenset[int] | None,
    *,
    days: int = DEFAULT_DAYS,
    upstream: int | None = None,
    now: datetime | None = None,
) -> Health:
    """The health of every downstream target the reader may view (``repositories``; None: all)
    over the last ``days`` days, or only of the targets that chains of ``upstream`` (a
    repository id) triggered: three queries (the aggregate, the names, the marks)."""
    until = now or timezone.now()
    first_day = (until.astimezone(UTC) - timedelta(days=days - 1)).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    per_day, overall = history.visible_daily(since, repositories, upstream)
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
