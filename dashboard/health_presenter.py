"""Downstream health shaped for a page and for the API: the same numbers in both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.safestring import SafeString

from dashboard import charts
from dashboard.health import Health, TargetHealth


@dataclass
class TargetRow:
    target: TargetHealth
    name: str
    forge: str
    rate: str
    p50: str
    p90: str
    chart: SafeString
    marks: tuple[str, ...]


@dataclass
class HealthPage:
    health: Health
    rows: list[TargetRow]
    failures: SafeString
    # Flaky / quarantined marks by target id (issue 13, part 2), as the rows show them.
    marks: dict[int, tuple[str, ...]]


def health_page(health: Health) -> HealthPage:
    rows = []
    for target in health.targets:
        repo = target.repository
        points = [charts.Point(d.date, d.p50, d.p90, d.successes, d.failures) for d in target.days]
        rows.append(
            TargetRow(
                target=target,
                name=repo.path,
                forge=repo.forge.name,
                rate=charts.percent_words(target.failure_rate),
                p50=charts.duration_words(target.p50),
                p90=charts.duration_words(target.p90),
                chart=charts.duration_chart(repo.path, points),
                marks=target.marks,
            )
        )
    bars = [charts.Bar(r.name, r.target.failures, r.target.runs, r.marks) for r in rows]
    return HealthPage(
        health=health,
        rows=rows,
        failures=charts.failure_chart(bars, health.days),
        marks={r.target.repository.pk: r.marks for r in rows if r.marks},
    )


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def health_data(health: Health) -> dict[str, Any]:
    """What the API answers: the numbers the charts draw."""
    return {
        "days": health.days,
        "since": health.since.isoformat(),
        "until": health.until.isoformat(),
        "left_off": health.left_off,
        "targets": [
            {
                "repository": t.repository.pk,
                "project": t.repository.path,
                "forge": t.repository.forge.slug,
                "runs": t.runs,
                "failures": t.failures,
                "failure_rate": None if t.failure_rate is None else round(t.failure_rate, 4),
                "p50_seconds": _seconds(t.p50),
                "p90_seconds": _seconds(t.p90),
                "marks": list(t.marks),
                "per_day": [
                    {
                        "date": d.date.isoformat(),
                        "successes": d.successes,
                        "failures": d.failures,
                        "p50_seconds": _seconds(d.p50),
                        "p90_seconds": _seconds(d.p90),
                    }
                    for d in t.days
                ],
            }
            for t in health.targets
        ],
    }
