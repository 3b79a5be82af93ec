"""Charts as server-side SVG: no JavaScript, readable in a screenshot and to a screen reader.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what
it shows; every value is also written as text (axis labels, a label at the end of each bar, a
``<title>`` on each point), and the two lines of a duration chart differ by shape and dash as
well as colour. Every piece of text is escaped here; the numbers are the ones the API gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_ids = count(1)


def duration_words(seconds: float | None) -> str:
    """``45 s``, ``4 min 05 s``, ``1 h 02 min``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def axis_words(seconds: float) -> str:
    """An axis label: ``0 s``, ``30 s``, ``5 min``, ``2 h``, ``7 min 30 s``."""
    whole = round(seconds)
    if whole < 60 or whole % 60:
        return duration_words(whole)
    if whole % 3600 == 0:
        return f"{whole // 3600} h"
    return f"{whole // 60} min"


def percent_words(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f} %"


@dataclass(frozen=True)
class Point:
    day: date
    p50: float | None
    p90: float | None
    successes: int
    failures: int


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value`` (seconds)."""
    steps = [10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400, 28800, 86400]
    for step in steps:
        if value <= step:
            return float(step)
    return float(value)


def _svg(width: int, height: int, title: str, desc: str, body: list[str], css: str) -> SafeString:
    n = next(_ids)
    return mark_safe(  # noqa: S308 - every piece of text in ``body`` was escaped by its builder
        f'<svg class="chart {css}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="chart-t{n} chart-d{n}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-t{n}">{escape(title)}</title><desc id="chart-d{n}">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def duration_chart(name: str, points: Sequence[Point]) -> SafeString:
    """p50 and p90 of successful runs per day: p50 a solid line with round points, p90 a dashed
    line with square points; days without a successful run leave a gap."""
    width, height = 520, 190
    left, right, top, bottom = 76, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for p in points for v in (p.p50, p.p90) if v is not None]
    top_value = _nice_top(max(values)) if values else 60.0
    known = [p for p in points if p.p50 is not None]
    if known:
        first, last = known[0], known[-1]
        desc = (
            f"Duration of successful runs of {name} per day over {len(points)} days: "
            f"{len(known)} days with successful runs; on {first.day.isoformat()} p50 "
            f"{duration_words(first.p50)}, p90 {duration_words(first.p90)}; on "
            f"{last.day.isoformat()} p50 {duration_words(last.p50)}, p90 "
            f"{duration_words(last.p90)}."
        )
    else:
        desc = f"No successful run of {name} in the last {len(points)} days."

    def x(i: int) -> float:
        return left + (plot_w * i / max(len(points) - 1, 1))

    def y(v: float) -> float:
        return top + plot_h - plot_h * min(v / top_value, 1.0)

    body = [
        f'<text class="legend" x="{left}" y="14">'
        f'<tspan class="p50">● p50 (median)</tspan>  <tspan class="p90">■ p90 (dashed)</tspan>'
        "</text>"
    ]
    for fraction in (0, 0.5, 1):
        v = top_value * fraction
        body.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{escape(axis_words(v))}</text>"
        )
    if points:
        for i in sorted({0, len(points) // 2, len(points) - 1}):
            anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
            body.append(
                f'<text class="axis" x="{x(i):.1f}" y="{height - 14}" text-anchor="{anchor}">'
                f"{escape(points[i].day.strftime('%d %b'))}</text>"
            )
    for series, marker in (("p50", "circle"), ("p90", "square")):
        segments: list[list[str]] = [[]]
        for i, p in enumerate(points):
            v = getattr(p, series)
            if v is None:
                segments.append([])
                continue
            segments[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for segment in segments:
            if len(segment) > 1:
                body.append(f'<polyline class="{series}" points="{" ".join(segment)}"/>')
        for i, p in enumerate(points):
            v = getattr(p, series)
            if v is None:
                continue
            tip = escape(
                f"{p.day.isoformat()}: {series} {duration_words(v)} "
                f"({p.successes} successful, {p.failures} failed)"
            )
            if marker == "circle":
                shape = f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5"/>'
            else:
                shape = f'<rect x="{x(i) - 3:.1f}" y="{y(v) - 3:.1f}" width="6" height="6"/>'
            body.append(f'<g class="{series}"><title>{tip}</title>{shape}</g>')
    if not known:
        body.append(
            f'<text class="empty-note" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle">No successful run in this window</text>'
        )
    return _svg(width, height, f"Duration of {name}, p50 and p90 per day", desc, body, "duration")


@dataclass(frozen=True)
class Bar:
    name: str
    failures: int
    runs: int
    marks: tuple[str, ...] = ()

    @property
    def rate(self) -> float | None:
        return self.failures / self.runs if self.runs else None


def failure_chart(bars: Sequence[Bar], days: int) -> SafeString:
    """One horizontal bar per target: its failure rate, written at the end of the bar with the
    counts (and its marks, such as "quarantined"), so no colour carries meaning alone."""
    row, label_w, bar_w, text_w = 26, 220, 260, 200
    width = label_w + bar_w + text_w
    height = 30 + row * max(len(bars), 1)
    body = [
        f'<text class="axis" x="{label_w}" y="14">0 %</text>'
        f'<text class="axis" x="{label_w + bar_w}" y="14" text-anchor="end">100 %</text>'
    ]
    words = []
    for i, bar in enumerate(bars):
        y0 = 22 + i * row
        rate = bar.rate or 0.0
        note = f"{percent_words(bar.rate)} ({bar.failures} of {bar.runs} failed)"
        if bar.marks:
            note += " · " + ", ".join(bar.marks)
        words.append(f"{bar.name}: {note}")
        name = bar.name if len(bar.name) <= 30 else "…" + bar.name[-29:]
        body.append(
            f'<text class="label" x="{label_w - 8}" y="{y0 + 15}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="fail-track" x="{label_w}" y="{y0 + 3}" width="{bar_w}" height="16"/>'
            f'<rect class="fail-bar{" high" if rate >= 0.25 else ""}" x="{label_w}" y="{y0 + 3}" '
            f'width="{bar_w * rate:.1f}" height="16"><title>{escape(bar.name)}: {escape(note)}'
            f"</title></rect>"
            f'<text class="value" x="{label_w + bar_w + 8}" y="{y0 + 15}">{escape(note)}</text>'
        )
    if not bars:
        body.append(
            f'<text class="empty-note" x="{label_w}" y="40">No finished run in this window</text>'
        )
    desc = f"Failure rate per downstream target over the last {days} days. " + "; ".join(words)
    return _svg(width, height, "Failure rate per downstream target", desc, body, "failures")
