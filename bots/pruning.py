"""Data over time: what Baton keeps, and the periodic task that removes the rest.

Three kinds, each with its own age (docs/operations.md, "Pruning"):

- deliveries (webhook bodies) handled longer than BATON_KEEP_DELIVERIES_DAYS ago — one still
  waiting for a worker is never removed;
- finished chains older than BATON_KEEP_CHAINS_DAYS, with everything they carried: their runs,
  the variables sent (masked ones included) and each run's attempts — a chain still moving, or
  whose mirroring is still due, is kept;
- audit entries older than BATON_KEEP_AUDIT_DAYS (kept longest: they outlive the chains they
  name, which they then show by their target text).

Rows go in batches of BATON_PRUNE_BATCH, each batch its own short transaction, so that no long
lock is held; one run stops after PRUNE_SECONDS and the next picks up where it stopped. The
counts go to the log and to the ``baton_pruned_total`` metric.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from bots import metrics
from chains.models import AuditEvent, Chain, Delivery
from chains.status import FINISHED

log = logging.getLogger(__name__)

PRUNE_SECONDS = 60.0  # well inside the task's soft time limit


@dataclass(frozen=True)
class Kind:
    name: str  # the metric's label
    model: type[models.Model]
    setting: str  # BATON_KEEP_…_DAYS

    def old(self, cutoff: datetime) -> models.QuerySet[models.Model]:
        manager = self.model._default_manager
        if self.model is Delivery:
            return manager.filter(received_at__lt=cutoff, processed_at__isnull=False)
        if self.model is Chain:
            return manager.filter(
                status__in=sorted(FINISHED),
                finished_at__lt=cutoff,
                mirror_requested_at__isnull=True,
            )
        return manager.filter(at__lt=cutoff)


KINDS = (
    Kind("deliveries", Delivery, "BATON_KEEP_DELIVERIES_DAYS"),
    Kind("chains", Chain, "BATON_KEEP_CHAINS_DAYS"),
    Kind("audit_events", AuditEvent, "BATON_KEEP_AUDIT_DAYS"),
)


def prune(
    *,
    now: datetime | None = None,
    batch: int | None = None,
    max_seconds: float = PRUNE_SECONDS,
) -> dict[str, int]:
    """Remove what is older than its setting; returns how many rows of each kind went."""
    now = now or timezone.now()
    batch = batch or settings.BATON_PRUNE_BATCH
    stop_at = time.monotonic() + max_seconds
    removed: dict[str, int] = {}
    for kind in KINDS:
        days = float(getattr(settings, kind.setting))
        removed[kind.name] = 0
        if days <= 0:  # 0: kept for ever
            continue
        old = kind.old(now - timedelta(days=days))
        while time.monotonic() < stop_at:
            with transaction.atomic():
                ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch])
                if not ids:
                    break
                _, by_model = old.filter(pk__in=ids).delete()  # still old, still finished
            count = by_model.get(kind.model._meta.label, 0)
            removed[kind.name] += count
            metrics.PRUNED.labels(kind.name).inc(count)
            if len(ids) < batch:
                break
    return removed


@shared_task(name="bots.pruning.prune")
def prune_task() -> dict[str, int]:
    removed = prune()
    if any(removed.values()):
        log.info(
            "pruned %s",
            ", ".join(f"{count} {name}" for name, count in removed.items()),
        )
    return removed
