"""Quarantined target projects: until a quarantine expires, the failures of runs planned for that
project are soft failures (they never fail the chain), and every surface that shows such a run
says ``quarantined: <reason>`` instead of ``soft-failed``."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from chains.failures import clean
from chains.models import Quarantine, Repository
from chains.runstate import soft_failed

MAX_REASON = 200


def active(repository: Repository) -> Quarantine | None:
    """The quarantine in force for the project now, if any (the latest to expire)."""
    return (
        Quarantine.objects.filter(repository=repository, expires_at__gt=timezone.now())
        .order_by("-expires_at")
        .first()
    )


def reason_of(repository: Repository) -> str:
    """Why the project is quarantined now, on one line ("" when it is not); from the row's
    annotations when it was read ``with_quarantine`` (no query), else from the database."""
    if hasattr(repository, "quarantine_expires_at"):
        if getattr(repository, "quarantine_expires_at") is None:  # noqa: B009 - an annotation
            return ""
        reason = getattr(repository, "quarantine_reason", "") or ""
    else:
        found = active(repository)
        if found is None:
            return ""
        reason = found.reason
    return clean(reason, MAX_REASON) or "no reason given"


def word(run: Any) -> str:
    """How a soft-failed run is named: its quarantine, or its `soft_fail: true`."""
    if getattr(run, "quarantine_reason", ""):
        return f"quarantined: {run.quarantine_reason}"
    return "soft-failed (allowed to fail)"


def with_quarantine(repositories: QuerySet[Any]) -> QuerySet[Any]:
    """Repositories, each with ``quarantine_reason`` and ``quarantine_expires_at`` of the
    quarantine in force (None when none), in the same one query."""
    now = timezone.now()
    current = Quarantine.objects.filter(repository=OuterRef("pk"), expires_at__gt=now).order_by(
        "-expires_at"
    )
    return repositories.annotate(
        quarantine_reason=Subquery(current.values("reason")[:1]),
        quarantine_expires_at=Subquery(current.values("expires_at")[:1]),
        quarantine_by=Subquery(current.values("created_by")[:1]),
    )


def counted(runs: Any) -> str:
    """``1 soft-failed, 2 quarantined`` for the runs that failed softly ("" when none did)."""
    failed = [r for r in runs if soft_failed(r)]
    held = sum(bool(getattr(r, "quarantine_reason", "")) for r in failed)
    parts = [f"{len(failed) - held} soft-failed"] if len(failed) > held else []
    return ", ".join([*parts, f"{held} quarantined"] if held else parts)
