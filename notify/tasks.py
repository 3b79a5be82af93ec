"""Celery tasks: look at a settled chain, and deliver one notification (retried with backoff).

Retries use Celery's exponential backoff with full jitter, as the forge tasks do
(bots/tasks.py ``ForgeTask``): a chat service that is down is tried again, up to
BATON_NOTIFY_RETRIES times, then the row says it failed and why (without the channel's secrets).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notify import channels, dispatch
from notify.metrics import NOTIFICATIONS
from notify.models import Notification

log = logging.getLogger(__name__)
MAX_LOOKS = 15  # a chain waiting for its failed jobs' reasons is looked at again this often


class Undelivered(Exception):
    """A try that failed and may succeed later."""


@shared_task(bind=True, max_retries=MAX_LOOKS)
def notify_chain(self, chain_id: int) -> None:  # type: ignore[no-untyped-def]
    wait = dispatch.chain_settled(chain_id, deliver_notification.delay)
    if wait is not None and self.request.retries < MAX_LOOKS:
        raise self.retry(countdown=wait)


@shared_task(
    bind=True,
    autoretry_for=(Undelivered,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=None,
)
def deliver_notification(self, notification_id: int) -> None:  # type: ignore[no-untyped-def]
    # The row stays locked while the service is asked: a second task for it (a repeat, or the
    # sweep's) skips it instead of sending the message again.
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=notification_id, outcome=Notification.Outcome.PENDING)
            .first()
        )
        if row is None:
            return  # sent already, given up, or being sent by another worker
        result = channels.send(row.channel.url, row.title, row.body)
        row.attempts += 1
        if result.ok:
            row.outcome, row.error, row.sent_at = Notification.Outcome.SENT, "", timezone.now()
            row.save(update_fields=["outcome", "error", "sent_at", "attempts"])
            NOTIFICATIONS.labels(row.event, "sent").inc()
            return
        row.error = result.error
        last = result.permanent or self.request.retries >= settings.BATON_NOTIFY_RETRIES
        if last:
            row.outcome = Notification.Outcome.FAILED
        row.save(update_fields=["outcome", "error", "attempts"])
    NOTIFICATIONS.labels(row.event, "failed" if last else "retry").inc()
    log.warning("notification %s to %s: %s", row.pk, row.channel.name, row.error)
    if not last:
        raise Undelivered(row.error)


@shared_task
def sweep_notifications() -> int:
    """Hand on the rows whose delivery task was lost (never tried, older than a minute)."""
    stale = timezone.now() - timedelta(seconds=max(60.0, settings.BATON_STALE_AFTER))
    found = list(
        Notification.objects.filter(
            outcome=Notification.Outcome.PENDING, attempts=0, created_at__lt=stale
        ).values_list("pk", flat=True)[:200]
    )
    for notification_id in found:
        deliver_notification.delay(notification_id)
    return len(found)
