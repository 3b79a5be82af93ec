"""When will a running chain be done? An estimate from each remaining target's history.

Each run still to finish is given the median (and, separately, the 90th percentile) of the last N
successful runs of its target (chains/history.py; N is ``BATON_ETA_HISTORY``, default 20). A run
starts when the runs it ``depends_on`` (its siblings under the same parent) and its parent run
have finished (a nested run waits for the run that triggered it: chains/runstate.py
``blockers``); a run already running counts its elapsed time (its remaining time is the duration
less what it has run, never below zero). The chain is expected to finish when the last of its
runs does: the critical path through the run tree and the ``depends_on`` edges. ``async`` runs
are not waited for.

The 90 % figure puts every remaining run at its own 90th percentile along the same path: a
pessimistic bound, not the 90th percentile of the sum. When a run still to finish has no
successful run in its history (or sits on a dependency cycle), there is no estimate: the
chain says "no estimate yet" rather than guess. Runs that nested pipelines have not created yet
cannot be foreseen: the estimate grows when they appear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from chains.history import Spread, history_runs, spread
from chains.models import Chain, Run
from chains.status import ACTIVE, FINISHED, Status

# A run in these has not begun (a retried run's old start is cleared, but be sure).
NOT_STARTED = frozenset({Status.QUEUED, Status.WAITING, Status.PENDING})

NO_ESTIMATE = "no estimate yet"


@dataclass(frozen=True)
class Step:
    """One run as the estimator sees it."""

    id: int
    key: str
    parent_id: int | None
    depends_on: tuple[str, ...]
    status: str
    started_at: datetime | None
    spread: Spread | None
    waited_for: bool = True  # False for ``async`` runs: the chain does not wait for them
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Estimate:
    """The chain's expected finish (median, 90 %) or, when unknown, the targets lacking history."""

    p50: datetime | None = None
    p90: datetime | None = None
    missing: tuple[str, ...] = field(default_factory=tuple)

    @property
    def known(self) -> bool:
        return self.p50 is not None and self.p90 is not None


def estimate(steps: Sequence[Step], now: datetime) -> Estimate:
    """The expected finish of the runs in ``steps`` (one chain's runs), or why there is none."""
    by_id = {s.id: s for s in steps}
    siblings: dict[tuple[int | None, str], Step] = {(s.parent_id, s.key): s for s in steps}
    pending = [s for s in steps if s.waited_for and s.status not in FINISHED]
    if not pending:
        return Estimate()
    missing = sorted({_name(s) for s in _needed(pending, by_id, siblings) if s.spread is None})
    if missing:
        return Estimate(missing=tuple(missing))
    ends = []
    for pick in ("p50", "p90"):
        finish = _Path(by_id, siblings, now, pick)
        times = [finish.end(s) for s in pending]
        if any(t is None for t in times):
            return Estimate(missing=("a dependency cycle",))
        ends.append(max(t for t in times if t is not None))
    return Estimate(p50=ends[0], p90=ends[1])


def _name(step: Step) -> str:
    return step.key


def _needed(
    pending: Iterable[Step],
    by_id: Mapping[int, Step],
    siblings: Mapping[tuple[int | None, str], Step],
) -> list[Step]:
    """The unfinished runs whose duration the estimate needs: the pending ones and every
    unfinished run they wait on (dependencies, ancestors not yet started)."""
    seen: dict[int, Step] = {}
    todo = list(pending)
    while todo:
        step = todo.pop()
        if step.id in seen or step.status in FINISHED:
            continue
        seen[step.id] = step
        todo += [
            siblings[(step.parent_id, k)]
            for k in step.depends_on
            if (step.parent_id, k) in siblings
        ]
        parent = by_id.get(step.parent_id) if step.parent_id is not None else None
        if parent is not None:
            todo.append(parent)  # unfinished (checked above): its end comes first
    return list(seen.values())


class _Path:
    """Start and end of each run under one choice of durations (p50 or p90), memoised."""

    def __init__(
        self,
        by_id: Mapping[int, Step],
        siblings: Mapping[tuple[int | None, str], Step],
        now: datetime,
        pick: str,
    ) -> None:
        self.by_id, self.siblings, self.now, self.pick = by_id, siblings, now, pick
        self.ends: dict[int, datetime | None] = {}
        self.starts: dict[int, datetime | None] = {}
        self.busy: set[int] = set()

    def _seconds(self, step: Step) -> float:
        assert step.spread is not None
        return float(getattr(step.spread, self.pick))

    def start(self, step: Step) -> datetime | None:
        if step.started_at is not None:
            return step.started_at
        if step.id in self.starts:
            return self.starts[step.id]
        if step.id in self.busy:
            return None  # a cycle: no estimate
        self.busy.add(step.id)
        at: datetime | None = self.now
        for key in step.depends_on:
            dep = self.siblings.get((step.parent_id, key))
            end = self.end(dep) if dep is not None else self.now
            at = None if at is None or end is None else max(at, end)
        parent = self.by_id.get(step.parent_id) if step.parent_id is not None else None
        if parent is not None and at is not None:
            done = self.end(parent)
            at = None if done is None else max(at, done)
        self.busy.discard(step.id)
        self.starts[step.id] = at
        return at

    def end(self, step: Step) -> datetime | None:
        if step.status in FINISHED:
            return min(step.finished_at or self.now, self.now)
        if step.id in self.ends:
            return self.ends[step.id]
        begun = self.start(step)
        end = None
        if begun is not None:
            end = max(self.now, begun + timedelta(seconds=self._seconds(step)))
        self.ends[step.id] = end
        return end


def spreads(
    targets: Iterable[tuple[int, str]], limit: int | None = None
) -> dict[tuple[int, str], Spread]:
    """p50/p90 of the last ``limit`` successful runs of each (project, ref), in one query. A run
    not sent yet may have no ref ("the default branch"): ``(project, "")`` reads the history on
    the project's default branch."""
    wanted = set(targets)
    if not wanted:
        return {}
    limit = history_runs() if limit is None else limit
    repos = {r for r, _ in wanted}
    refs = {ref for _, ref in wanted if ref}
    on_default = {r for r, ref in wanted if not ref}
    which = Q(ref__in=refs) | Q(repository_id__in=on_default, ref=F("repository__default_branch"))
    rows = (
        Run.objects.filter(
            which,
            repository_id__in=repos,
            status=Status.SUCCESS,
            reused_from__isnull=True,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .annotate(
            nth=Window(
                RowNumber(),
                partition_by=[F("repository_id"), F("ref")],
                order_by=F("finished_at").desc(),
            )
        )
        .filter(nth__lte=limit)
        .values_list(
            "repository_id", "ref", "repository__default_branch", "started_at", "finished_at"
        )
    )
    seconds: dict[tuple[int, str], list[float]] = {}
    for repo, ref, default, started, finished in rows:
        if not (started and finished):
            continue
        took = max(0.0, (finished - started).total_seconds())
        for key in {(repo, ref), (repo, "")} if ref == default else {(repo, ref)}:
            if key in wanted:
                seconds.setdefault(key, []).append(took)
    return {k: s for k, v in seconds.items() if (s := spread(v)) is not None}


def for_chain(
    chain: Chain, runs: Sequence[Run] | None = None, now: datetime | None = None
) -> Estimate:
    """The chain's estimate; nothing (``Estimate()``) for a finished chain. One query at most
    (none when no run is left to finish); pass ``runs`` already loaded to spare reading them."""
    if chain.status in FINISHED:
        return Estimate()
    runs = list(chain.runs.all()) if runs is None else list(runs)
    active = [r for r in runs if r.status in ACTIVE]
    if not active:
        return Estimate()
    history = spreads({(r.repository_id, r.ref) for r in active})
    steps = [
        Step(
            id=r.pk,
            key=r.key,
            parent_id=r.parent_id,
            depends_on=tuple(r.depends_on or ()),
            status=r.status,
            started_at=r.started_at if r.status not in NOT_STARTED else None,
            spread=history.get((r.repository_id, r.ref)),
            waited_for=r.strategy != Run.Strategy.ASYNC,
            finished_at=r.finished_at,
        )
        for r in runs
    ]
    return estimate(steps, now or timezone.now())


def describe(est: Estimate, *, utc: bool = False) -> str:
    """The words for an estimate: 'expected to finish ~14:05 (90 %: 14:12)', 'no estimate yet'
    (a target without history), or '' when nothing is left to run."""
    if not est.known:
        return NO_ESTIMATE if est.missing else ""
    assert est.p50 is not None and est.p90 is not None
    p50, p90 = (
        (est.p50.astimezone(UTC), est.p90.astimezone(UTC))
        if utc
        else (timezone.localtime(est.p50), timezone.localtime(est.p90))
    )
    zone = " UTC" if utc else ""
    return f"expected to finish ~{p50:%H:%M}{zone} (90 %: {p90:%H:%M}{zone})"
