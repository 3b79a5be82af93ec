"""Duration history of downstream targets, read from the runs themselves.

A *target* is a downstream project and the ref it runs on (``Run.repository``, ``Run.ref``); a
ref pattern (a glob, ``release/*``) groups several refs. The history is never copied into a
table of its own: finished runs already hold ``started_at`` and ``finished_at``, and the index
``run_history`` (repository, status, finished_at descending) makes "the last N successful runs
of this project" an index range scan whatever the number of runs (see docs/dashboard.md).

A run's duration is its last attempt's, ``started_at`` to ``finished_at`` (a retry clears both,
chains/runstate.py); runs that stand for an earlier green run (``reused_from``) are not counted
twice. Everything here is read-only and returns plain values: the ETA (chains/eta.py), the
chain page and the API read ``durations``; the health page, its plots and its API read
``daily`` (per target and day: successes, failures, p50/p90 of the successful runs, from their
start, else their trigger, to their end). ``percentile`` is the one percentile of the project's
domain: PostgreSQL's ``percentile_cont``, whose own answer ``daily`` takes when it can.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    QuerySet,
)
from django.db.models.functions import Coalesce, TruncDate

from chains.globs import glob_match
from chains.models import Repository, Run
from chains.status import Status

DEFAULT_HISTORY_RUNS = 20
# A glob over refs cannot be answered by the index: at most this many newest rows are scanned.
MAX_SCAN = 2000


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


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """PostgreSQL's ``percentile_cont(fraction)`` in Python (``fraction`` 0..1): linear
    interpolation between the closest ranks; None when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * min(max(fraction, 0.0), 1.0)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of a set of durations (seconds), and how many there were."""

    p50: float
    p90: float
    count: int


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    p50, p90 = percentile(values, 0.5) or 0.0, percentile(values, 0.9) or 0.0
    return Spread(p50=p50, p90=p90, count=len(values))


def target_spread(
    repository_id: int, ref_pattern: str | None = None, limit: int | None = None
) -> Spread | None:
    """p50/p90 of the last N successful runs of the target; None: no history yet."""
    return spread(durations(repository_id, ref_pattern, limit))


# --- per day, for the health page and the API -------------------------------------------------
#
# One query whatever the number of runs: on PostgreSQL ``percentile_cont`` per target and day and
# per target over the window, in one pass; elsewhere (SQLite, `make run`'s embedded default) the
# durations of the window are read once and ``percentile`` computes the same.


@dataclass(frozen=True)
class Day:
    """One day of a target's finished runs: successes, failures, and p50/p90 (seconds) of the
    successful ones' durations."""

    date: date
    successes: int = 0
    failures: int = 0
    p50: float | None = None
    p90: float | None = None


HEALTH_STATUSES = (Status.SUCCESS, Status.FAILED)  # canceled and skipped runs say nothing
PerDay = dict[int, dict[date, Day]]  # by target project, by day (UTC)
Window = dict[int, tuple[float | None, float | None]]  # by target project: p50, p90
MAX_ROWS = 200_000  # the fallback reads at most this many durations


def finished_runs(
    since: datetime, repositories: frozenset[int] | None = None, upstream: int | None = None
) -> QuerySet[Run]:
    """Runs that succeeded or failed since ``since`` (canceled and skipped runs say nothing of a
    target), child pipelines left out; only those whose target project and whose chain's
    project are both in ``repositories`` (None: every one), and only those that chains of
    ``upstream`` (a repository id) triggered when given.

    The filter is the condition of the partial index ``run_health`` (target, UTC day of the
    end; docs/dashboard.md), and the day bound (implied by ``since``) is its range."""
    runs = (
        Run.objects.alias(finished_day=_day())
        .filter(
            finished_at__gte=since,
            finished_day__gte=since.astimezone(UTC).date(),
            status__in=HEALTH_STATUSES,
        )
        .exclude(is_child=True)
    )
    if upstream is not None:
        runs = runs.filter(chain__repository_id=upstream)
    if repositories is not None:
        ids = sorted(repositories)
        runs = runs.filter(repository_id__in=ids, chain__repository_id__in=ids)
    return runs


def _day() -> TruncDate:
    """The UTC day a run finished on, as the index ``run_health`` holds it."""
    return TruncDate("finished_at", tzinfo=UTC)


def daily(runs: QuerySet[Run]) -> tuple[PerDay, Window]:
    """Per target and day, and per target over all of ``runs``: one query."""
    if connection.vendor == "postgresql":
        return daily_in_database(runs)
    return daily_here(runs)


def _seconds() -> Any:
    """A run's duration in seconds: from when it started (else was triggered) to its end."""
    span = ExpressionWrapper(
        F("finished_at") - Coalesce("started_at", "triggered_at", "created_at"),
        output_field=DurationField(),
    )
    if connection.vendor == "postgresql":
        # date_part is a double, as percentile_cont wants it; EXTRACT is a numeric, converted
        # row by row (a third of the health aggregate's time at 80,000 runs).
        return Func(span, template="date_part('epoch', %(expressions)s)", output_field=FloatField())
    return span


# Each target's days and its whole window from the same rows, in one pass: the grouping set
# (target) is a prefix of (target, day), so PostgreSQL sorts the rows once, or not at all when
# the index ``run_health`` hands them over in order, and the window's percentiles stay exact.
_DAILY_SQL = """
SELECT repository_id, day, GROUPING(day),
    COUNT(*) FILTER (WHERE status = %s),
    COUNT(*) FILTER (WHERE status <> %s),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE status = %s),
    percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE status = %s)
FROM ({runs}) runs{where}
GROUP BY GROUPING SETS ((repository_id, day), (repository_id))"""


def _daily_rows(runs: QuerySet[Run], where: str = "") -> tuple[str, list[Any]]:
    """``_DAILY_SQL`` over ``runs`` (raises EmptyResultSet when ``runs`` can hold nothing), only
    when ``where`` (SQL without columns; its parameters follow) holds."""
    rows = runs.annotate(day=_day(), seconds=_seconds()).values(
        "repository_id", "day", "status", "seconds"
    )
    # In the index's order: the grouping sets see the day as the outer query's own expression,
    # not the index's, and would sort the rows again.
    sql, params = rows.order_by("repository_id", "day").query.sql_with_params()
    where = f"\nWHERE {where}" if where else ""
    return _DAILY_SQL.format(runs=sql, where=where), [*[Status.SUCCESS.value] * 4, *params]


def _read_daily(sql: str, params: list[Any]) -> tuple[PerDay, Window]:
    per_day: PerDay = defaultdict(dict)
    window: Window = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for pk, day, whole, successes, failures, p50, p90 in cursor.fetchall():
            if not whole:
                per_day[pk][day] = Day(day, successes, failures, p50, p90)
            elif successes:  # as ``daily_here``: a window without a success has no percentile
                window[pk] = (p50, p90)
    return dict(per_day), window


def daily_in_database(runs: QuerySet[Run]) -> tuple[PerDay, Window]:
    """``daily`` by PostgreSQL's ``percentile_cont``: one query, one pass over the runs."""
    try:
        return _read_daily(*_daily_rows(runs))
    except EmptyResultSet:  # no repository may be viewed
        return {}, {}


# A reader who may view every project needs no look at the chains behind the runs: PostgreSQL
# reads the few projects first (a one-time filter) and runs one of the two aggregates, the one
# without the join to chains keeping the index's order (no sort). Exactly ``finished_runs``:
# the projects are read in the same statement.
_EVERY_PROJECT = f"""(SELECT NOT EXISTS (
    SELECT 1 FROM {Repository._meta.db_table} WHERE NOT (id = ANY(%s))))"""  # noqa: S608


def visible_daily(
    since: datetime, repositories: frozenset[int] | None = None, upstream: int | None = None
) -> tuple[PerDay, Window]:
    """``daily(finished_runs(since, repositories, upstream))``, in one query."""
    runs = finished_runs(since, repositories, upstream)
    if connection.vendor != "postgresql" or repositories is None or upstream is not None:
        return daily(runs)
    ids = sorted(repositories)
    every = finished_runs(since, None).filter(repository_id__in=ids)
    try:
        fast, fast_params = _daily_rows(every, _EVERY_PROJECT)
        checked, checked_params = _daily_rows(runs, f"NOT {_EVERY_PROJECT}")
    except EmptyResultSet:  # no repository may be viewed
        return {}, {}
    sql = f"({fast}) UNION ALL ({checked})"
    return _read_daily(sql, [*fast_params, ids, *checked_params, ids])


def daily_here(runs: QuerySet[Run]) -> tuple[PerDay, Window]:
    """``daily`` in Python over the runs' durations, read in one query (at most MAX_ROWS)."""
    ok: dict[tuple[int, date], list[float]] = defaultdict(list)
    failed: dict[tuple[int, date], int] = defaultdict(int)
    window: dict[int, list[float]] = defaultdict(list)
    rows = runs.values_list("repository_id", "finished_at", "status", "started_at", "triggered_at")
    for repository_id, finished, status, started, triggered in rows[:MAX_ROWS]:
        if finished is None:  # the window's filter excludes it; for the type checker
            continue
        begun = started or triggered or finished
        day = finished.astimezone(UTC).date()
        if status == Status.SUCCESS:
            seconds = max((finished - begun).total_seconds(), 0.0)
            ok[(repository_id, day)].append(seconds)
            window[repository_id].append(seconds)
        else:
            failed[(repository_id, day)] += 1
    per_day: PerDay = defaultdict(dict)
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
    return dict(per_day), overall
