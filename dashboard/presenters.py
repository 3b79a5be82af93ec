"""What the templates show, computed from models without touching the database.

Forge words (merge request, pull request, workflow run) appear here only as display labels looked
up by ``forge.kind``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from html import escape
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from chains import failures, quarantine, retrying
from chains.failures import Failure
from chains.models import Chain, Forge, Repository, Run, RunAttempt
from chains.policy import user_may
from chains.redaction import PRIVATE, scrub
from chains.status import ACTIVE, FINISHED, NOT_YET_SENT, Status
from dashboard.queries import MatrixRun

# --- status ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusView:
    value: str
    label: str
    icon: str
    finished: bool


_ICONS = {
    Status.QUEUED: "…",
    Status.WAITING: "⏸",
    Status.PENDING: "◌",
    Status.RUNNING: "◔",
    Status.MANUAL: "✋",
    Status.SUCCESS: "✓",
    Status.FAILED: "✕",
    Status.CANCELED: "⊘",
    Status.SKIPPED: "↷",
}


@lru_cache(maxsize=64)
def status_view(value: str) -> StatusView:
    try:
        status = Status(value)
    except ValueError:
        return StatusView(value, value or "unknown", "?", False)
    return StatusView(status.value, status.label, _ICONS[status], status in FINISHED)


STATUS_CHOICES = [(s.value, s.label) for s in Status]


# --- forge display labels ----------------------------------------------------------------------

_CHANGE_LABELS: dict[str, tuple[str, str]] = {
    Forge.Kind.GITLAB: ("merge request", "!"),
    Forge.Kind.GITHUB: ("pull request", "#"),
}
_PIPELINE_LABELS: dict[str, str] = {
    Forge.Kind.GITLAB: "pipeline",
    Forge.Kind.GITHUB: "workflow run",
}


def change_noun(kind: str) -> str:
    return _CHANGE_LABELS.get(kind, ("change", "#"))[0]


def change_ref(chain: Chain) -> str:
    """How the forge writes the change: ``!12`` (GitLab) or ``#12`` (GitHub); a push or tag
    chain has no change: ``branch main``, ``tag v1.2.0``."""
    if chain.change_number is None:
        for prefix, word in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if chain.upstream_ref.startswith(prefix):
                return f"{word} {chain.upstream_ref.removeprefix(prefix)}"
        return ""
    return change_mark(chain.forge.kind, chain.change_number)


def change_mark(kind: str, number: int) -> str:
    """``!12`` on GitLab, ``#12`` on GitHub."""
    return f"{_CHANGE_LABELS.get(kind, ('', '#'))[1]}{number}"


def pipeline_noun(kind: str) -> str:
    return _PIPELINE_LABELS.get(kind, "pipeline")


# --- durations ---------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def attempt_start(
    started: datetime | None, triggered: datetime | None, earlier_end: datetime | None
) -> datetime | None:
    """When an attempt began: a forge that re-runs the same pipeline reports the first
    attempt's start, so no attempt began before the previous one ended."""
    began = started or triggered
    if began is not None and earlier_end is not None and began < earlier_end:
        return earlier_end
    return began


@dataclass(frozen=True)
class AttemptRow:
    """An earlier attempt with its own duration."""

    attempt: RunAttempt
    duration: str


def attempt_rows(attempts: list[RunAttempt]) -> list[AttemptRow]:
    rows, earlier_end = [], None
    for attempt in sorted(attempts, key=lambda a: a.number):
        began = attempt_start(attempt.started_at, attempt.triggered_at, earlier_end)
        seconds = (
            (attempt.finished_at - began).total_seconds()
            if began is not None and attempt.finished_at is not None
            else None
        )
        rows.append(AttemptRow(attempt, format_duration(seconds)))
        earlier_end = attempt.finished_at or earlier_end
    return rows


@dataclass(frozen=True)
class Bar:
    """Where a run sits on the chain's timeline, in percent."""

    left: float
    width: float


# --- chain list --------------------------------------------------------------------------------


@dataclass
class ChainRow:
    chain: Chain
    status: StatusView
    change: str
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def chain_rows(chains: Iterable[Chain], progress: dict[int, Any]) -> list[ChainRow]:
    rows = []
    for chain in chains:
        p = progress.get(chain.pk)
        rows.append(
            ChainRow(
                chain,
                status_view(chain.status),
                change_ref(chain),
                p.done if p else 0,
                p.total if p else 0,
            )
        )
    return rows


# --- one chain: the tree -----------------------------------------------------------------------


@dataclass
class RunNode:
    run: Run
    status: StatusView
    depth: int
    guides: list[str]  # one per level: "pipe", "blank", "tee" or "elbow"
    parent_label: str
    duration: str
    running_since: datetime | None
    bar: Bar | None
    variables: list[tuple[str, str]]
    masked: list[str]
    attempts: list[AttemptRow]
    can_retry: bool
    can_cancel: bool
    can_retry_subtree: bool = False  # it set runs off, and none of them is still active
    soft_fail: bool = False  # its failure does not fail the chain
    waits_for: list[str] = field(default_factory=list)
    failed_jobs: list[Failure] = field(default_factory=list)  # why it failed (chains/failures.py)
    attempt_words: str = ""  # "attempt 2 of 3, automatic retry: runner_system_failure"

    @property
    def name(self) -> str:
        return self.run.label or self.run.key

    @property
    def variable_count(self) -> int:
        return len(self.variables) + len(self.masked)


@dataclass
class ChainPage:
    chain: Chain
    status: StatusView
    change: str
    change_noun: str
    pipeline_noun: str
    nodes: list[RunNode]
    done: int
    total: int
    failed: int
    active: int
    settled: bool
    can_act: bool
    notes: list[str] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def _timeline(runs: list[Run], chain: Chain, now: datetime) -> tuple[datetime, float]:
    starts: list[datetime] = []
    ends: list[datetime] = []
    for run in runs:
        began = run.started_at or run.triggered_at
        if began is not None:
            starts.append(began)
            ends.append(run.finished_at or now)
    start = min(starts, default=chain.created_at)
    end = max(ends, default=now)
    return start, max((end - start).total_seconds(), 1.0)


def _node(
    run: Run, guides: list[str], parent: str, *, t0: datetime, span: float, now: datetime
) -> RunNode:
    attempts = attempt_rows(list(run.attempts.all()))
    earlier_end = max(
        (a.attempt.finished_at for a in attempts if a.attempt.finished_at), default=None
    )
    started = attempt_start(run.started_at, run.triggered_at, earlier_end)
    bar = seconds = None
    if started is not None:
        end = run.finished_at or now
        seconds = (end - started).total_seconds()
        left = 100 * (started - t0).total_seconds() / span
        bar = Bar(round(max(left, 0.0), 2), round(max(100 * seconds / span, 1.0), 2))
    active = run.status in ACTIVE
    return RunNode(
        run=run,
        status=status_view(run.status),
        depth=len(guides),
        guides=guides,
        parent_label=parent,
        duration=format_duration(seconds) if seconds is not None else "not started",
        running_since=started if active and run.started_at else None,
        bar=bar,
        variables=sorted((str(k), str(v)) for k, v in (run.variables or {}).items()),
        masked=sorted(str(name) for name in (run.masked_variables or {})),
        attempts=attempts,
        can_retry=run.status in (Status.FAILED, Status.CANCELED),
        can_cancel=active and not run.cancel_requested,
        soft_fail=bool(getattr(run, "soft_fail", False)),
        waits_for=[
            str(key)
            for key in (getattr(run, "depends_on", None) or [])
            if run.status in NOT_YET_SENT
        ],
        failed_jobs=failures.shown(run),
        attempt_words=retrying.attempt_words(run) if run.attempt > 1 or run.retry_max else "",
    )


@dataclass(frozen=True)
class QuarantineView:
    reason: str
    expires_at: datetime
    created_by: str


@dataclass(frozen=True)
class Health:
    """A target project's flakiness and quarantine, on its repository page."""

    flaky_runs: int  # failed, then passed on a retry of the same commit
    quarantine: QuarantineView | None
    may_quarantine: bool


def health(repository: Repository, user: Any) -> Health:
    """One query (chains/retrying.py, chains/quarantine.py annotations)."""
    one = Repository.objects.filter(pk=repository.pk)
    row = (
        quarantine.with_quarantine(retrying.with_flakiness(one))
        .values("flaky_runs", "quarantine_reason", "quarantine_expires_at", "quarantine_by")
        .first()
        or {}
    )
    found = None
    if row.get("quarantine_reason") is not None and row.get("quarantine_expires_at"):
        found = QuarantineView(
            row["quarantine_reason"], row["quarantine_expires_at"], row["quarantine_by"] or ""
        )
    return Health(
        flaky_runs=int(row.get("flaky_runs") or 0),
        quarantine=found,
        may_quarantine=bool(user_may(user, "quarantine", repository)),
    )


def with_upstream(run: Run, seen: bool) -> Run:
    """A run listed on its repository's page, with whether the reader may know the project whose
    chain triggered it (``upstream_private``: what to show instead of it, with no link)."""
    run.upstream_private = "" if seen else PRIVATE  # type: ignore[attr-defined]
    return run


def scrubbed(run: Run, names: set[str]) -> Run:
    """A run the reader may view whose texts mention runs they may not: those names replaced
    (its earlier attempts' errors too)."""
    cache = getattr(run, "_prefetched_objects_cache", {})
    attempts = list(cache.get("attempts", []))
    if not names or not (
        run.error
        or run.depends_on
        or run.failed_jobs
        or run.quarantine_reason
        or any(a.error for a in attempts)
    ):
        return run
    shown = copy.copy(run)
    shown.error = scrub(run.error, names)
    shown.quarantine_reason = scrub(run.quarantine_reason, names)
    shown.failed_jobs = failures.scrubbed(run.failed_jobs, names)
    shown.depends_on = [PRIVATE if key in names else key for key in run.depends_on or []]
    cleaned = []
    for attempt in attempts:
        attempt = copy.copy(attempt)
        attempt.error = scrub(attempt.error, names)
        cleaned.append(attempt)
    shown._prefetched_objects_cache = {**cache, "attempts": cleaned}  # type: ignore[attr-defined]
    return shown


def redacted(run: Run) -> Run:
    """A copy of a run in a project the reader may not view: no name, ref, variables or link."""
    hidden = copy.copy(run)
    hidden.private = True  # type: ignore[attr-defined]
    hidden.label = hidden.key = PRIVATE
    hidden.ref = hidden.web_url = hidden.remote_id = hidden.error = hidden.workflow = ""
    hidden.variables, hidden.masked_variables, hidden.undelivered = {}, {}, []
    hidden.failed_jobs = {}
    hidden.quarantine_reason = "private" if run.quarantine_reason else ""
    hidden.retried_for = ""
    hidden.depends_on = []
    hidden._prefetched_objects_cache = {"attempts": []}  # type: ignore[attr-defined]
    return hidden


def run_tree(chain: Chain, runs: list[Run], now: datetime | None = None) -> list[RunNode]:
    """Runs in tree order (parents before children), each with its connector guides."""
    now = now or timezone.now()
    t0, span = _timeline(runs, chain, now)
    known = {run.pk for run in runs}
    children: dict[int | None, list[Run]] = defaultdict(list)
    for run in runs:
        parent = run.parent_id if run.parent_id in known else None
        children[parent].append(run)
    nodes: list[RunNode] = []

    def walk(parent: Run | None, prefix: list[str]) -> None:
        kids = children.get(parent.pk if parent else None, [])
        for i, run in enumerate(kids):
            last = i == len(kids) - 1
            label = (parent.label or parent.key) if parent else ""
            nodes.append(
                _node(
                    run,
                    [*prefix, "elbow" if last else "tee"],
                    label,
                    t0=t0,
                    span=span,
                    now=now,
                )
            )
            walk(run, [*prefix, "blank" if last else "pipe"])

    walk(None, [])

    def idle(run: Run) -> bool:
        return run.status not in ACTIVE and all(idle(kid) for kid in children.get(run.pk, []))

    for node in nodes:
        node.can_retry_subtree = bool(children.get(node.run.pk)) and idle(node.run)
    return nodes


def chain_page(chain: Chain, runs: list[Run], *, can_act: bool) -> ChainPage:
    nodes = run_tree(chain, runs)
    done = sum(run.status in FINISHED for run in runs)
    active = len(runs) - done
    settled = (
        chain.status in FINISHED
        and active == 0
        and chain.mirror_requested_at is None
        and chain.mirror_lease_until is None
    )
    kind = chain.forge.kind
    notes = []
    if chain.from_fork:
        notes.append(
            f"This {change_noun(kind)} comes from a fork: its .baton.yml was read "
            "from the target branch."
        )
    return ChainPage(
        chain=chain,
        status=status_view(chain.status),
        change=change_ref(chain),
        change_noun=change_noun(kind),
        pipeline_noun=pipeline_noun(kind),
        nodes=nodes,
        done=done,
        total=len(runs),
        failed=sum(run.status == Status.FAILED for run in runs),
        active=active,
        settled=settled,
        can_act=can_act,
        notes=notes,
    )


# --- release matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    path: str
    repository_id: int


_NOT_TRIGGERED = (
    '<span class="muted" title="not triggered"><span aria-hidden="true">·</span>'
    '<span class="sr-only">not triggered</span></span>'
)


@lru_cache(maxsize=64)
def status_html(view: StatusView, size: str = "") -> SafeString:
    """A status as an icon and a word, never by colour alone. (A handful of statuses: each is
    built once per process.)"""
    return format_html(
        '<span class="status status-{} {}"><span class="status-icon" aria-hidden="true">{}</span>'
        " {}</span>",
        view.value,
        size,
        view.icon,
        view.label,
    )


def _cell_link(run: MatrixRun, chain_url: str, many: bool) -> str:
    """One run in a cell. Every text from the database is escaped here (``escape``: the
    standard library's, which django.utils.html.escape wraps in a SafeString each call; a
    matrix has a thousand cells)."""
    view = status_view(run.status)
    name = escape(f"{run.label or run.key}: {view.label}")
    key = f' <span class="muted">{escape(run.key)}</span>' if many else ""
    why = run.quarantine_reason
    tag = f' <span class="tag quarantined">quarantined: {escape(why)}</span>' if why else ""
    return (
        f'<a class="cell-link" href="{escape(chain_url)}#run-{int(run.pk)}" title="{name}">'
        f"{status_html(view)}{key}{tag}</a>"
    )


@dataclass
class Cell:
    column: Column
    runs: list[MatrixRun]  # a project may run more than once in a chain
    chain_url: str = ""

    def html(self) -> str:
        """The cell's contents, every text in it escaped (``_cell_link``)."""
        if not self.runs:
            return _NOT_TRIGGERED
        many = len(self.runs) > 1
        return "".join(_cell_link(run, self.chain_url, many) for run in self.runs)


@dataclass
class MatrixRow:
    chain: Chain
    status: StatusView
    change: str
    cells: list[Cell]  # one per column
    done: int
    total: int

    @property
    def cells_html(self) -> SafeString:
        """Built here rather than in the template: a matrix has many cells."""
        return mark_safe(  # noqa: S308  # the paths escaped here, the cells in _cell_link
            "".join(
                f'<td data-label="{escape(cell.column.path)}">{cell.html()}</td>'
                for cell in self.cells
            )
        )


@dataclass
class Matrix:
    ref: str
    columns: list[Column]  # downstream projects
    rows: list[MatrixRow]


def release_matrix(ref: str, chains: list[Chain], runs: dict[int, list[MatrixRun]]) -> Matrix:
    columns = sorted(
        {Column(run.path, run.repository_id) for rs in runs.values() for run in rs},
        key=lambda column: column.path,
    )
    index = {column.repository_id: i for i, column in enumerate(columns)}
    rows = []
    for chain in chains:
        url = reverse("chain-detail", args=[chain.pk])
        cells = [Cell(column, [], url) for column in columns]
        chain_runs = runs.get(chain.pk, [])
        for run in chain_runs:
            cells[index[run.repository_id]].runs.append(run)
        rows.append(
            MatrixRow(
                chain,
                status_view(chain.status),
                change_ref(chain),
                cells,
                sum(run.status in FINISHED for run in chain_runs),
                len(chain_runs),
            )
        )
    return Matrix(ref, columns, rows)


@dataclass
class PlanRow:
    key: str
    project: str
    ref: str  # the branch or tag, the project's default branch's name when known
    waits_for: str
    variables: list[tuple[str, str]]
    masked: list[str]
    allowed: bool
    why: str
    label: str = ""
    default_ref: bool = False  # ``ref`` is the project's default branch (or unknown: "")

    @property
    def name(self) -> str:
        return self.label or self.key


def plan_rows(result: Any, may_view: Callable[[Repository], bool]) -> list[PlanRow]:
    """The dry run as rows; targets the reader may not view show as a private project (a target
    Baton has no row for yet is an unsaved Repository: asked about by its path)."""
    rows = []
    hidden = [not may_view(repository) for _, repository, _, _ in result.targets]
    names = {
        name
        for (planned, repository, _, _), out in zip(result.targets, hidden, strict=True)
        if out
        for name in (repository.path, planned.key, planned.label)
        if name
    }
    for (planned, repository, problem, verdict), out in zip(result.targets, hidden, strict=True):
        allowed = bool(verdict) and not problem and not planned.skip
        why = problem or (f"skipped: {planned.skip}" if planned.skip else verdict.reason)
        if out:
            rows.append(
                PlanRow(PRIVATE, PRIVATE, "", "", [], [], allowed, "" if allowed else "not allowed")
            )
            continue
        rows.append(
            PlanRow(
                key=planned.key,
                label=planned.label if planned.label != planned.key else "",
                project=repository.path,
                ref=planned.ref or repository.default_branch,
                default_ref=not planned.ref,
                waits_for=scrub(", ".join(planned.depends_on), names),
                variables=sorted(planned.variables.items()),
                masked=sorted(planned.masked_variables),
                allowed=allowed,
                why=scrub(why, names),
            )
        )
    return rows
