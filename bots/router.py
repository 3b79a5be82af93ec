"""The worker's router: parse a stored delivery into a neutral event and hand it to the handler
for its kind (a table of handlers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bots import forge_records, leases, metrics
from bots.commands.handlers import handle_comment
from bots.engine.planning import handle_change
from bots.engine.pushes import handle_push
from bots.engine.tracking import handle_pipeline
from bots.events import (
    ChangeEvent,
    CommentEvent,
    Ignored,
    MalformedPayload,
    PipelineEvent,
    PushEvent,
)
from bots.inbound.table import INBOUND
from bots.scrubbing import scrub_payload
from chains.models import Delivery, Forge

log = logging.getLogger(__name__)

__all__ = ["HANDLERS", "INBOUND", "fail", "note", "process"]

HANDLERS: dict[type, Callable[[Forge, Any, Delivery | None], str]] = {
    ChangeEvent: handle_change,
    PipelineEvent: handle_pipeline,
    CommentEvent: handle_comment,
    PushEvent: handle_push,
}


STARTED = "an attempt started; it has not finished"


def process(delivery_id: int) -> None:
    """Handle one delivery once. A transient forge error propagates (the task retries it)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return
    with leases.holding(delivery.pk, delivery.attempts):
        _handle(delivery)


def _claim(delivery_id: int) -> Delivery | None:
    """The delivery, taken for a new attempt with a lease, or None: processed already, leased
    by a live worker (it renews its lease while it works), or out of attempts (then parked).
    A free delivery is taken in one statement (``DeliveryManager.take``), its forge from what
    this process keeps (``bots/forge_records.py``)."""
    now = timezone.now()
    lease_until = leases.lease_from(now)
    taken = Delivery.objects.take(
        delivery_id,
        now=now,
        lease_until=lease_until,
        cap=settings.BATON_MAX_DELIVERY_ATTEMPTS,
        detail=STARTED,  # the admin shows the attempt's number beside it
    )
    if taken is None:
        _park_if_spent(delivery_id)
        return None
    forge_id, event, payload, attempts = taken
    forge = forge_records.by_id(forge_id)
    if forge is None:  # deleted meanwhile: its deliveries go with it
        return None
    return Delivery(
        pk=delivery_id,
        forge=forge,
        event=event,
        payload=payload,
        attempts=attempts,
        detail=STARTED,
        lease_until=lease_until,
    )


def _park_if_spent(delivery_id: int) -> None:
    """Every attempt so far ended without an outcome (a time limit, a worker that died, forge
    errors): a poison delivery must not be handed to the workers forever."""
    cap = settings.BATON_MAX_DELIVERY_ATTEMPTS
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("forge")
            .filter(pk=delivery_id, processed_at__isnull=True, attempts__gte=cap)
            .first()
        )
        if delivery is None:
            return
        if delivery.lease_until is not None and delivery.lease_until > timezone.now():
            return  # its last attempt is still running
        last = f" Last: {delivery.detail}" if delivery.detail else ""
        delivery.processed_at = timezone.now()
        delivery.outcome = Delivery.Outcome.FAILED
        delivery.detail = (
            f"parked after {delivery.attempts} attempts that did not finish "
            f"(BATON_MAX_DELIVERY_ATTEMPTS={cap}); process it again from the admin once the "
            f"cause is fixed.{last}"
        )[:2000]
        delivery.save(update_fields=["processed_at", "outcome", "detail"])
    metrics.delivery_handled(delivery.forge.slug, delivery.event, delivery.outcome)
    log.warning("delivery %s parked after %s attempts", delivery.pk, delivery.attempts)


def _handle(delivery: Delivery) -> None:
    inbound = INBOUND[delivery.forge.kind]
    try:
        event = inbound.parse(delivery.event, delivery.payload)
    except MalformedPayload as exc:
        _finish(delivery, Delivery.Outcome.REJECTED, str(exc))
        return
    if event is None:
        _finish(delivery, Delivery.Outcome.IGNORED, f"{delivery.event}: nothing to do")
        return
    if isinstance(event, Ignored):
        _finish(delivery, Delivery.Outcome.IGNORED, f"{delivery.event}: {event.reason}")
        return
    detail = HANDLERS[type(event)](delivery.forge, event, delivery)
    if isinstance(event, PipelineEvent):
        _scrub_again(delivery, event)
    _finish(delivery, Delivery.Outcome.PROCESSED, detail)


def _scrub_again(delivery: Delivery, event: PipelineEvent) -> None:
    """Now that the pipeline is matched to its run, take out what intake could not tell was
    masked (and what deliveries stored before intake scrubbed still hold)."""
    clean = scrub_payload(delivery.forge, delivery.event, delivery.payload, parsed=event)
    if clean != delivery.payload:
        Delivery.objects.filter(pk=delivery.pk).update(payload=clean)


def note(delivery_id: int, detail: str) -> None:
    """Say why the current attempt did not finish, for the admin (the delivery stays queued)."""
    Delivery.objects.filter(pk=delivery_id, processed_at__isnull=True).update(detail=detail[:2000])


def fail(delivery_id: int, detail: str) -> None:
    failed = Delivery.objects.filter(pk=delivery_id, processed_at__isnull=True).update(
        processed_at=timezone.now(),
        outcome=Delivery.Outcome.FAILED,
        detail=detail[:2000],
        lease_until=None,
    )
    if failed:
        for slug, event in Delivery.objects.filter(pk=delivery_id).values_list(
            "forge__slug", "event"
        ):
            metrics.delivery_handled(slug, event, Delivery.Outcome.FAILED)


def _finish(delivery: Delivery, outcome: str, detail: str) -> None:
    Delivery.objects.finish(delivery.pk, outcome, detail)
    metrics.delivery_handled(delivery.forge.slug, delivery.event, outcome)
