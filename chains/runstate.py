"""The run state machine, in one place: which moves a run's status may make (one table), what the
forge's news does to it, when a run is ready, blocked or passed, which waiting runs a finished
run releases or skips, and what the whole chain's status is.

The rules are pure functions over plain values (anything with a run's attributes: a ``Run``, or
a ``Node`` built in a test). The few writers below are the only code that assigns a run's
``status``; they change the object in memory and never touch the database, so the caller saves
(and tests can assert that, tests/chains/test_runstate.py). ``settle_chain`` is the one place a
chain's ``status`` and ``finished_at`` are written: the engine calls it, through
``bots.engine.mirroring.request_mirror``, in the same transaction as the runs it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from chains.models import Chain, Run
from chains.status import FINISHED, Status, fold, upstream_view

log = logging.getLogger(__name__)

_Q, _W, _P = Status.QUEUED, Status.WAITING, Status.PENDING
_R, _M = Status.RUNNING, Status.MANUAL
_S, _F, _C, _K = Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.SKIPPED
_ENDS = frozenset({_S, _F, _C, _K})

# Every move a run's status may make. Staying put is always allowed. A finished run moves on
# to another end when the forge changes its mind (a pipeline retried there), and back to the
# start only as a new attempt (``restart``: a retry from Baton).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    _Q: frozenset({_W, _P, _R, _M}) | _ENDS,  # planned: waits its turn, is sent, fails to send
    _W: frozenset({_Q, _P, _R, _M}) | _ENDS,  # its turn comes (dependencies, rate limits, wait:)
    _P: frozenset({_R, _M}) | _ENDS,
    _R: frozenset({_M}) | _ENDS,
    _M: frozenset({_R}) | _ENDS,
    _S: frozenset({_F, _C, _K, _Q, _W}),  # retried with what it set off (retry_subtree)
    _F: frozenset({_S, _C, _K, _Q, _W, _P}),  # retried (a new pipeline, or the same one again)
    _C: frozenset({_S, _F, _K, _Q, _W, _P}),
    _K: frozenset({_S, _F, _C, _Q, _W}),
}

# How far a run has come within one attempt: forge news never moves it back.
RANK: dict[Status, int] = {_Q: 0, _W: 0, _P: 1, _R: 2, _M: 2}


class IllegalMove(ValueError):
    """A move the table does not allow (a bug in the caller, not bad input)."""


def allowed(current: str, new: str) -> bool:
    return current == new or Status(new) in TRANSITIONS[Status(current)]


def reported(
    current: str,
    news: str,
    *,
    ended_at: datetime | None = None,
    news_ended_at: datetime | None = None,
) -> bool:
    """Whether the forge's news ``news`` moves a run that is ``current``: never backwards within
    one attempt (a late "running" after "success" is old news, and so is a repeat), though a
    finished pipeline may end differently (the forge retried it) — but only when the news ended
    later than the end on record (``ended_at``, ``news_ended_at``: the forge's finish times,
    when both are known), so that two ends delivered out of order settle on the newer."""
    now, new = Status(current), Status(news)
    if now in FINISHED:
        if new not in FINISHED or new == now:
            return False
        return ended_at is None or news_ended_at is None or news_ended_at > ended_at
    return new in FINISHED or RANK.get(new, 0) >= RANK.get(now, 0)


# --- what a run waits for ----------------------------------------------------------------------


class RunLike(Protocol):
    """What the rules read of a run (read-only: a ``Run`` or a ``Node``)."""

    @property
    def pk(self) -> int | None: ...
    @property
    def parent_id(self) -> int | None: ...
    @property
    def key(self) -> str: ...
    @property
    def depends_on(self) -> list[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def soft_fail(self) -> bool: ...
    @property
    def allow_dependency_failure(self) -> bool: ...


@dataclass
class Node:
    """A run as plain values (tests, and anything that is not a saved Run)."""

    pk: int | None
    key: str
    status: str
    parent_id: int | None = None
    depends_on: list[str] = field(default_factory=list)
    soft_fail: bool = False
    allow_dependency_failure: bool = False
    not_before: datetime | None = None


def passed(run: RunLike, status: str | None = None) -> bool:
    """Succeeded, or failed softly (a soft failure never holds anything up)."""
    status = run.status if status is None else status
    return status == Status.SUCCESS or (status == Status.FAILED and run.soft_fail)


def soft_failed(run: RunLike) -> bool:
    """Failed, and allowed to: it passes (upstream it shows as success), and every word Baton
    writes about it says "soft-failed", never a plain success."""
    return run.status == Status.FAILED and bool(run.soft_fail)


def retry_pending(run: Any) -> bool:
    """Failed, and its `retry:` may still retry it: the failed jobs of this attempt are not read
    yet (bots/engine/flaky.py decides once they are, or gives up). Until then it counts as still
    running, so nothing waiting for it is skipped and the chain does not go red in between."""
    return _pending(
        run.status,
        getattr(run, "attempt", 1),
        getattr(run, "retry_max", 0),
        getattr(run, "cancel_requested", False),
        getattr(run, "remote_id", ""),
        (getattr(run, "failed_jobs", None) or {}).get("attempt")
        if isinstance(getattr(run, "failed_jobs", None), dict)
        else None,
    )


def _pending(
    status: str, attempt: int, retry_max: int, cancel: bool, remote_id: str, read_for: Any
) -> bool:
    return (
        status == Status.FAILED
        and retry_max >= attempt
        and not cancel
        and bool(remote_id)
        and read_for != attempt
    )


def waits_on_others(run: RunLike) -> bool:
    """Whether the run waits for other runs (its depends_on, or the run that triggered it)."""
    return bool(run.depends_on) or run.parent_id is not None


def blockers(
    run: RunLike, family: Sequence[RunLike], statuses: dict[int | None, str] | None = None
) -> tuple[list[RunLike], list[RunLike]]:
    """(unfinished, unsuccessful) among what ``run`` waits for: the runs of the same level it
    names in depends_on, and the run that triggered it (its parent). ``statuses`` overrides the
    runs' own (the release below works on a copy)."""

    def status(r: RunLike) -> str:
        return statuses.get(r.pk, r.status) if statuses else r.status

    waits_for = [r for r in family if r.parent_id == run.parent_id and r.key in run.depends_on]
    parent = next((r for r in family if r.pk == run.parent_id), None)
    unfinished = [r for r in waits_for if status(r) not in FINISHED]
    failed = [r for r in waits_for if status(r) in FINISHED and not passed(r, status(r))]
    if parent is not None:
        if status(parent) not in FINISHED:
            unfinished.append(parent)
        elif not passed(parent, status(parent)):
            failed.append(parent)
    return unfinished, failed


def ready(
    run: RunLike, family: Sequence[RunLike], statuses: dict[int | None, str] | None = None
) -> bool:
    """Whether everything ``run`` waits for has finished in a way that lets it go: all passed, or
    some failed and the run allows dependency failure (never a failed parent)."""
    unfinished, failed = blockers(run, family, statuses)
    if unfinished:
        return False
    parent_failed = any(f.pk == run.parent_id for f in failed)
    return not failed or (run.allow_dependency_failure and not parent_failed)


def blocked(
    run: RunLike, family: Sequence[RunLike], statuses: dict[int | None, str] | None = None
) -> bool:
    """Whether the run can never go: all it waits for has finished, and not well enough."""
    unfinished, _ = blockers(run, family, statuses)
    return not unfinished and not ready(run, family, statuses)


@dataclass(frozen=True)
class Release:
    """What the release does to one waiting run: queue it, or skip it because of ``failed``."""

    run: RunLike
    status: Status
    failed: tuple[RunLike, ...] = ()


def releases(family: Sequence[RunLike]) -> list[Release]:
    """The waiting runs whose dependencies have all finished: queued when they may go, skipped
    when they never can (a skipped run may in turn settle runs that wait for it). Runs waiting
    for a time (``not_before``: rate limits, `wait:`) are left to the sender."""
    statuses: dict[int | None, str] = {
        r.pk: Status.RUNNING if retry_pending(r) else r.status for r in family
    }
    out: list[Release] = []
    changed = True
    while changed:
        changed = False
        for run in family:
            if statuses[run.pk] != Status.WAITING or not waits_on_others(run):
                continue
            if getattr(run, "not_before", None):
                continue
            unfinished, failed = blockers(run, family, statuses)
            if unfinished:
                continue
            if ready(run, family, statuses):
                statuses[run.pk] = Status.QUEUED
                out.append(Release(run, Status.QUEUED))
            else:
                statuses[run.pk] = Status.SKIPPED
                out.append(Release(run, Status.SKIPPED, tuple(failed)))
                changed = True
    return out


# --- the chain ---------------------------------------------------------------------------------


def chain_status(error: str, views: Iterable[str]) -> Status:
    """A chain's status: failed when it could not be planned, else its runs' upstream views
    folded (chains/status.py)."""
    return Status.FAILED if error else fold(views)


def view(status: str, strategy: str, sent: bool, soft_fail: bool) -> Status:
    return upstream_view(status, strategy=strategy, sent=sent, soft_fail=soft_fail)


# --- the writers: the only code that assigns a run's status ------------------------------------


def initial(run: Run, *, waits: bool, error: str = "", skip: str = "") -> None:
    """The status a new run starts in: failed (it cannot be run: ``error``), skipped, waiting
    for other runs, or queued to be sent."""
    if error:
        status = Status.FAILED
    elif skip:
        status = Status.SKIPPED
    else:
        status = Status.WAITING if waits else Status.QUEUED
    run.status = status
    run.error = error or skip
    run.finished_at = timezone.now() if status in FINISHED else None


def reuse(run: Run) -> None:
    """A new run that an earlier green run with the same inputs stands for: success at once."""
    run.status = Status.SUCCESS


def move(
    run: Run, status: Status, *, error: str | None = None, now: datetime | None = None
) -> bool:
    """Baton moves the run (waits, is queued, fails to send, is canceled or skipped). Refused,
    with a warning and nothing changed, when the table does not allow it. Finishing sets
    ``finished_at``; ``error`` (when given) says why, in words. True when the status changed."""
    current = run.status
    if not allowed(current, status):
        log.warning("run %s: refused to move from %s to %s", run.pk, current, status)
        return False
    run.status = status
    if status in FINISHED and current not in FINISHED:
        run.finished_at = now or timezone.now()
    if error is not None:
        run.error = error
    return current != status


def apply_report(
    run: Run,
    status: Status,
    *,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    earlier_end: datetime | None = None,
) -> tuple[bool, bool]:
    """Move the run to what the forge says, never backwards within one attempt. Returns
    (changed, newly finished): the caller saves it and, when it newly finished, releases the
    runs waiting for it. ``earlier_end``: when the run's previous attempt ended (a retry); an
    end no later than that is the previous attempt's, late news that this attempt ignores."""
    current = Status(run.status)
    if not reported(current, status, ended_at=run.finished_at, news_ended_at=finished_at):
        return False, False
    if status in FINISHED and earlier_end and finished_at and finished_at <= earlier_end:
        return False, False
    if earlier_end and started_at and started_at < earlier_end:
        started_at = earlier_end  # a re-run pipeline reports its first attempt's start
    changed = current != status
    run.status = status
    now = timezone.now()
    if status in (Status.RUNNING, Status.MANUAL) and run.started_at is None:
        run.started_at = started_at or now
    if status in FINISHED:
        run.finished_at = finished_at or now
        run.started_at = run.started_at or run.finished_at
    if status == Status.SUCCESS:
        run.error = ""  # e.g. a cancel that came too late: the run is simply green
    return changed, changed and status in FINISHED


def sent(run: Run) -> None:
    """The forge accepted the run: a run that waited for its turn counts as queued until the
    forge's status (applied next) moves it on."""
    if run.status == Status.WAITING:
        run.status = Status.QUEUED


def restart(run: Run, *, waits: bool = False, remote: bool = False) -> Status:
    """A new attempt (a retry): pending when the forge re-runs the same pipeline (``remote``),
    else waiting for other runs or queued to be sent. The last attempt's times are cleared."""
    status = Status.PENDING if remote else (Status.WAITING if waits else Status.QUEUED)
    if not allowed(run.status, status):
        raise IllegalMove(f"a {run.status} run cannot start again as {status}")
    run.status = status
    run.started_at = run.finished_at = None
    return status


# --- the chain's row ---------------------------------------------------------------------------


MOVING = frozenset({Status.PENDING, Status.RUNNING, Status.MANUAL})  # fold: the chain runs


def keeps_chain_as_is(run: Run, before_status: str, before_dispatch: str) -> bool:
    """Whether a change of one unfinished run to another unfinished state leaves its chain's
    status and finished_at as they are, whatever its other runs are and whatever other
    transactions do to them: its upstream view was and stays one that keeps the chain running
    (``fold``), so no settle needs the chain's row (the lock every pipeline hook queued on)."""
    if before_status in FINISHED or run.status in FINISHED:
        return False
    was = view(before_status, run.strategy, before_dispatch == Run.Dispatch.SENT, run.soft_fail)
    now = view(run.status, run.strategy, run.dispatch == Run.Dispatch.SENT, run.soft_fail)
    return was in MOVING and now in MOVING


def new_chain_status(error: str, runs: Sequence[Run]) -> tuple[Status, datetime | None]:
    """The status and finished_at that ``settle_chain`` would write for a chain inserted with
    these runs (none of them sent yet or retried; a reused run counts as sent), so that the
    transaction creating the chain writes them in its INSERT instead of locking, reading and
    updating the row it has just written."""
    views = [
        view(run.status, run.strategy, run.dispatch == Run.Dispatch.SENT, run.soft_fail)
        for run in runs
    ]
    done = all(run.status in FINISHED for run in runs)
    return chain_status(error, views), timezone.now() if done else None


def settle_chain(chain_id: int) -> None:
    """Write the chain's status and finished_at from its runs, in the caller's transaction.

    The chain's row is locked first: two runs of the chain finishing in two transactions at once
    would otherwise each fold a view that misses the other's end, and leave the chain "running".
    Then one query reads the distinct (status, strategy, sent, soft_fail) of its runs, all the
    fold needs, and one UPDATE writes the result (a chain that could not be planned stays
    failed; a finished chain keeps the time it first finished). The engine locks runs before
    their chain, never the other way round."""
    with transaction.atomic(savepoint=False):
        if not list(Chain.objects.select_for_update().filter(pk=chain_id).values_list("pk")):
            return
        rows = [
            (Status.RUNNING if _pending(s, *retry) else s, strategy, d, soft)
            for s, strategy, d, soft, *retry in Run.objects.filter(chain_id=chain_id)
            .values_list(
                "status",
                "strategy",
                "dispatch",
                "soft_fail",
                "attempt",
                "retry_max",
                "cancel_requested",
                "remote_id",
                "failed_jobs__attempt",
            )
            .distinct()
        ]
        views = [view(s, strategy, d == Run.Dispatch.SENT, soft) for s, strategy, d, soft in rows]
        done = all(s in FINISHED for s, *_ in rows)
        Chain.objects.filter(pk=chain_id).update(
            status=Case(When(~Q(error=""), then=Value(Status.FAILED)), default=Value(fold(views))),
            finished_at=Coalesce(F("finished_at"), Value(timezone.now())) if done else None,
        )
