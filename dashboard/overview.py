"""The chain list grouped by change: one row per change (its latest chain), with a mini status
icon per target, an outcome-coloured progress bar and the change's earlier chains folded under it.

Computed from what ``queries.grouped_page`` read, without touching the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from chains.models import Chain
from chains.redaction import PRIVATE
from chains.status import ACTIVE, Status
from dashboard.presenters import StatusView, change_ref, status_view
from dashboard.queries import GroupedPage, RunDot, change_key

MAX_DOTS = 12  # mini icons per row; the rest are counted ("+3 more")

# The bar's segments, in order: (css name, words, statuses).
SEGMENTS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("success", "passed", frozenset({Status.SUCCESS})),
    ("failed", "failed", frozenset({Status.FAILED})),
    ("running", "running or waiting", frozenset(ACTIVE)),
    ("canceled", "canceled or skipped", frozenset({Status.CANCELED, Status.SKIPPED})),
)


@dataclass(frozen=True)
class Dot:
    run_id: int
    name: str  # PRIVATE for a run in a project the reader may not view
    status: StatusView

    @property
    def title(self) -> str:
        return f"{self.name}: {self.status.label}"


@dataclass(frozen=True)
class Segment:
    name: str
    words: str
    count: int
    percent: float


@dataclass
class EarlierChain:
    chain: Chain
    status: StatusView


@dataclass
class ChangeRow:
    chain: Chain
    status: StatusView
    change: str
    dots: list[Dot]
    more: int  # runs beyond MAX_DOTS
    segments: list[Segment]
    total: int
    earlier_count: int
    earlier: list[EarlierChain] = field(default_factory=list)

    @property
    def dots_html(self) -> SafeString:
        """The mini icons, built here rather than in the template: a page has hundreds. Every
        text is escaped (``escape``: the standard library's, as django.utils.html.escape)."""
        url = escape(reverse("chain-detail", args=[self.chain.pk]))
        return mark_safe(  # noqa: S308  # every text escaped
            "".join(
                f'<li><a class="dot status-{escape(dot.status.value)}" '
                f'href="{url}#run-{int(dot.run_id)}" title="{escape(dot.title)}" '
                f'aria-label="{escape(dot.title)}"><span aria-hidden="true">'
                f"{escape(dot.status.icon)}</span></a></li>"
                for dot in self.dots
            )
        )

    @property
    def done(self) -> int:
        return sum(s.count for s in self.segments if s.name != "running")

    @property
    def summary(self) -> str:
        """The bar in words: ``4 / 5 finished: 3 passed, 1 failed, 1 running or waiting``."""
        parts = [f"{s.count} {s.words}" for s in self.segments if s.count]
        if not parts:
            return "no runs"
        return f"{self.done} / {self.total} finished: {', '.join(parts)}"


def _segments(runs: list[RunDot]) -> list[Segment]:
    total = len(runs) or 1
    out = []
    for name, words, statuses in SEGMENTS:
        count = sum(run.status in statuses for run in runs)
        out.append(Segment(name, words, count, round(100 * count / total, 2)))
    return out


def _dot(run: RunDot, visible: frozenset[int] | None) -> Dot:
    seen = visible is None or run.repository_id in visible
    return Dot(run.pk, (run.label or run.key) if seen else PRIVATE, status_view(run.status))


def change_rows(grouped: GroupedPage, visible: frozenset[int] | None) -> list[ChangeRow]:
    """One row per change; ``visible``: the repositories the reader may view (None: all), the
    policy's answer (dashboard.access.scope)."""
    rows = []
    for chain in grouped.page.object_list:
        runs = grouped.runs.get(chain.pk, [])
        key = change_key(chain)
        rows.append(
            ChangeRow(
                chain=chain,
                status=status_view(chain.status),
                change=change_ref(chain),
                dots=[_dot(run, visible) for run in runs[:MAX_DOTS]],
                more=max(len(runs) - MAX_DOTS, 0),
                segments=_segments(runs),
                total=len(runs),
                earlier_count=grouped.earlier_counts.get(key, 0),
                earlier=[
                    EarlierChain(c, status_view(c.status)) for c in grouped.earlier.get(key, [])
                ],
            )
        )
    return rows
