"""Duration history of downstream targets, read from the runs themselves.

A *target* is a downstream project and the ref it runs on (``Run.repository``, ``Run.ref``); a
ref pattern (a glob, ``release/*``) groups several refs. The history is never copied into a
table of its own: finished runs already hold ``started_at`` and ``finished_at``, and the index
``run_history`` (repository, status, finished_at descending) makes "the last N successful runs
of this project" an index range scan whatever the number of runs (see docs/dashboard.md).

A run's duration is its last attempt's, ``started_at`` to ``finished_at`` (a retry clears both,
chains/runstate.py); runs that stand for an earlier green run (``reused_from``) are not counted
twice. Everything here is read-only and returns plain values: the ETA (chains/eta.py), the
chain page, the API, the plots and the health page all read the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from chains.globs import glob_match
from chains.models import Run
from chains.status import Status

DEFAULT_HISTORY_RUNS = 20
# A glob over refs cannot be answered by the index: at most this many newest rows are scanned.
MAX_SCAN = 2000
MAX_DAYS = 366


def history_runs() -> int:
    """N, how many successful runs of a target the estimate looks at (``BATON_ETA_HISTORY``)."""
    return int(getattr(settings, "BATON_ETA_HISTORY", DEFAULT_HISTORY_RUNS))


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?")


def _finished(repository_id: int, statuses: Sequence[str]) -> QuerySet[Run]:
    return Run.objects.filter(
        repository_id=repository_id,
        status__in=list(statuses),
        reused_from__isnull=True,
        started_at__isnull=False,
        finished_at__isnull=False,
    ).order_by("-finished_at")


def _by_ref(qs: QuerySet[Run], ref_pattern: str | None) -> tuple[QuerySet[Run], bool]:
    if ref_pattern and not _is_glob(ref_pattern):
        return qs.filter(ref=ref_pattern), False
    return qs, bool(ref_pattern)


def durations(
    repository_id: int, ref_pattern: str | None = None, limit: int | None = None
) -> list[float]:
    """Seconds of the last ``limit`` (default: setting ``BATON_ETA_HISTORY``) successful runs of
    the target, newest first. ``ref_pattern``: an exact ref, a glob, or None for any ref."""
    limit = history_runs() if limit is None else max(0, int(limit))
    qs, glob = _by_ref(_finished(repository_id, [Status.SUCCESS]), ref_pattern)
    rows = qs.values_list("ref", "started_at", "finished_at")
    out: list[float] = []
    for ref, started, finished in rows[:MAX_SCAN] if glob else rows[:limit]:
        if (glob and not glob_match(ref_pattern or "", ref)) or not (started and finished):
            continue
        out.append(max(0.0, (finished - started).total_seconds()))
        if len(out) >= limit:
            break
    return out


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolated between closest ranks; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of a set of durations (seconds), and how many there were."""

    p50: float
    p90: float
    count: int


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    p50, p90 = percentile(values, 50) or 0.0, percentile(values, 90) or 0.0
    return Spread(p50=p50, p90=p90, count=len(values))


def target_spread(
    repository_id: int, ref_pattern: str | None = None, limit: int | None = None
) -> Spread | None:
    """p50/p90 of the last N successful runs of the target; None: no history yet."""
    return spread(durations(repository_id, ref_pattern, limit))


@dataclass(frozen=True)
class Day:
    """One day of a target's history: finished runs, failures, and durations of the green ones."""

    day: date
    runs: int
    failed: int
    p50: float | None
    p90: float | None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0


def daily(
    repository_id: int,
    ref_pattern: str | None = None,
    *,
    days: int = 30,
    now: datetime | None = None,
) -> list[Day]:
    """Per day (UTC, oldest first, days without runs left out) over the last ``days`` days:
    successful and failed runs, failure rate, p50/p90 of the successful runs' durations.
    Canceled and skipped runs are not counted (nobody's pipeline failed)."""
    days = min(max(1, int(days)), MAX_DAYS)
    now = now or timezone.now()
    since = now - timedelta(days=days)
    qs, glob = _by_ref(_finished(repository_id, [Status.SUCCESS, Status.FAILED]), ref_pattern)
    rows = qs.filter(finished_at__gte=since).values_list(
        "ref", "status", "started_at", "finished_at", "soft_fail"
    )
    return _days(
        (status, started, finished)
        for ref, status, started, finished, _soft in rows.iterator()
        if not glob or glob_match(ref_pattern or "", ref)
    )


def _days(rows: Iterable[tuple[str, datetime | None, datetime | None]]) -> list[Day]:
    green: dict[date, list[float]] = defaultdict(list)
    failed: dict[date, int] = defaultdict(int)
    for status, started, finished in rows:
        if not (started and finished):
            continue
        day = finished.astimezone(UTC).date()
        if status == Status.SUCCESS:
            green[day].append(max(0.0, (finished - started).total_seconds()))
        else:
            failed[day] += 1
    out = []
    for day in sorted(set(green) | set(failed)):
        values = green.get(day, [])
        out.append(
            Day(
                day=day,
                runs=len(values) + failed.get(day, 0),
                failed=failed.get(day, 0),
                p50=percentile(values, 50),
                p90=percentile(values, 90),
            )
        )
    return out


def daily_by_target(
    repository_ids: Iterable[int] | None = None,
    *,
    days: int = 30,
    now: datetime | None = None,
) -> dict[tuple[int, str], list[Day]]:
    """``daily`` for every target (project, ref) at once, in one query: for a page of many
    targets (the downstream health page). ``repository_ids``: only these projects (None: all)."""
    days = min(max(1, int(days)), MAX_DAYS)
    since = (now or timezone.now()) - timedelta(days=days)
    qs = Run.objects.filter(
        status__in=[Status.SUCCESS, Status.FAILED],
        reused_from__isnull=True,
        started_at__isnull=False,
        finished_at__gte=since,
    )
    if repository_ids is not None:
        qs = qs.filter(repository_id__in=list(repository_ids))
    grouped: dict[tuple[int, str], list[tuple[str, datetime | None, datetime | None]]] = (
        defaultdict(list)
    )
    rows = qs.values_list("repository_id", "ref", "status", "started_at", "finished_at")
    for repo, ref, status, started, finished in rows.iterator():
        grouped[(repo, ref)].append((status, started, finished))
    return {target: _days(rows) for target, rows in sorted(grouped.items())}


@dataclass(frozen=True)
class Target:
    repository_id: int
    ref: str
    runs: int


def targets(*, days: int = 30, now: datetime | None = None) -> list[Target]:
    """The targets (project, ref) that finished a run in the last ``days`` days, busiest first."""
    since = (now or timezone.now()) - timedelta(days=min(max(1, int(days)), MAX_DAYS))
    rows = (
        Run.objects.filter(
            finished_at__gte=since,
            status__in=[Status.SUCCESS, Status.FAILED],
            reused_from__isnull=True,
        )
        .values("repository_id", "ref")
        .annotate(n=Count("id"))
        .order_by("-n", F("repository_id"), "ref")
    )
    return [Target(r["repository_id"], r["ref"], r["n"]) for r in rows]
