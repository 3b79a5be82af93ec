"""Celery tasks: thin, keyed by primary key, safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from bots import router
from bots.engine import mirroring, planning, tracking, triggering
from bots.events import PipelineEvent
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains.models import Chain, Delivery, Run
from chains.status import ACTIVE, NOT_YET_SENT, Status

log = logging.getLogger(__name__)

# Countdowns stay well under the broker's visibility timeout.
MAX_COUNTDOWN = 600.0

# Every task has the soft and hard time limits of settings (CELERY_TASK_SOFT_TIME_LIMIT and
# CELERY_TASK_TIME_LIMIT); these tasks have tighter ones. A sender stops before its claim on the
# run (BATON_TRIGGER_LEASE) runs out, so no second worker sends while it still might.
SWEEP_SOFT_LIMIT = min(settings.CELERY_TASK_SOFT_TIME_LIMIT, 30)
SWEEP_HARD_LIMIT = min(settings.CELERY_TASK_TIME_LIMIT, 40)
_LEASE = settings.BATON_TRIGGER_LEASE
TRIGGER_SOFT_LIMIT = max(1, min(settings.CELERY_TASK_SOFT_TIME_LIMIT, int(_LEASE * 0.75)))
TRIGGER_HARD_LIMIT = max(2, min(settings.CELERY_TASK_TIME_LIMIT, int(_LEASE * 0.9)))


def _countdown(exc: ForgeError, retries: int) -> float:
    if exc.retry_after is not None:
        return min(MAX_COUNTDOWN, exc.retry_after)
    return min(MAX_COUNTDOWN, 2.0 ** min(retries, 9))


@shared_task(bind=True, max_retries=None)
def process_delivery(self, delivery_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        router.process(delivery_id)
    except SoftTimeLimitExceeded:
        limit = self.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
        log.warning("delivery %s: gave up after %s s", delivery_id, limit)
        router.fail(
            delivery_id,
            f"gave up: handling it took longer than {limit:g} s (BATON_TASK_SOFT_TIME_LIMIT); "
            "process it again from the admin once the cause is fixed",
        )
    except ForgeError as exc:
        if exc.permanent or self.request.retries >= settings.BATON_MAX_FORGE_RETRIES:
            router.fail(delivery_id, exc.message)
            return
        router.note(delivery_id, f"will try again: {exc.message}")
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None
    except Exception as exc:
        log.exception("delivery %s could not be handled", delivery_id)
        router.fail(delivery_id, f"internal error: {type(exc).__name__}")


@shared_task(soft_time_limit=TRIGGER_SOFT_LIMIT, time_limit=TRIGGER_HARD_LIMIT)
def trigger_run(run_id: int) -> None:
    try:
        triggering.trigger(run_id)
    except SoftTimeLimitExceeded:
        # The claim runs out and the sweeper tries again, up to BATON_MAX_RUN_ATTEMPTS sends.
        log.warning("run %s: sending took longer than %s s", run_id, TRIGGER_SOFT_LIMIT)
        Run.objects.filter(pk=run_id).update(
            error=f"sending took longer than {TRIGGER_SOFT_LIMIT} s; will try again"
        )


@shared_task(bind=True, max_retries=None)
def mirror_chain(self, chain_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        done = mirroring.mirror(chain_id)
    except ForgeError as exc:
        log.warning("chain %s: mirroring failed: %s", chain_id, exc.message)
        capped = self.request.retries >= settings.BATON_MAX_FORGE_RETRIES
        if exc.permanent or (capped and not exc.rate_limited):
            # Given up; the chain's next change asks for a mirror again.
            return
        # Wait as long as the forge asked (Retry-After), else back off; rate limits always
        # wait their turn, other errors count towards BATON_MAX_FORGE_RETRIES.
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None
    if not done:
        raise self.retry(countdown=1.0)


@shared_task(bind=True, max_retries=None)
def poll_run(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        tracking.poll(run_id)
    except ForgeError as exc:
        log.warning("run %s: polling failed: %s", run_id, exc.message)


def _remote_action(run_id: int, action: str) -> None:
    run = Run.objects.select_related("repository__forge").filter(pk=run_id).first()
    if run is None or not run.remote_id:
        return
    forge = forge_for(run.repository.forge)
    verb = forge.cancel_pipeline if action == "cancel" else forge.retry_pipeline
    remote = verb(run.repository.path, run.remote_id)
    tracking.handle_pipeline(
        run.repository.forge,
        PipelineEvent(
            project=run.repository.path,
            project_id=run.repository.remote_id,
            pipeline_id=run.remote_id,
            status=remote.status,
            web_url=remote.web_url,
        ),
        None,
    )


@shared_task(bind=True, max_retries=None)
def cancel_remote(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        _remote_action(run_id, "cancel")
    except ForgeError as exc:
        if exc.permanent or self.request.retries >= settings.BATON_MAX_FORGE_RETRIES:
            Run.objects.filter(pk=run_id).update(error=f"could not cancel: {exc.message}")
            return
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None


@shared_task(bind=True, max_retries=None)
def retry_remote(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        _remote_action(run_id, "retry")
    except ForgeError as exc:
        if exc.permanent or self.request.retries >= settings.BATON_MAX_FORGE_RETRIES:
            Run.objects.filter(pk=run_id).update(
                status=Status.FAILED,
                finished_at=timezone.now(),
                error=f"could not retry: {exc.message}",
            )
            chain_id = Run.objects.get(pk=run_id).chain_id
            mirroring.request_mirror(chain_id)
            tracking.release(chain_id)
            return
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None


@shared_task(bind=True, max_retries=None)
def rerun_chain(self, chain_id: int, actor: str, user_id: int | None = None) -> None:  # type: ignore[no-untyped-def]
    try:
        planning.rerun_change(chain_id, actor, user_id=user_id)
    except ForgeError as exc:
        if exc.permanent or self.request.retries >= settings.BATON_MAX_FORGE_RETRIES:
            log.warning("chain %s could not be re-run: %s", chain_id, exc.message)
            return
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None


@shared_task(bind=True, max_retries=None)
def expand_run(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        planning.expand_run(run_id)
    except ForgeError as exc:
        if self.request.retries >= settings.BATON_MAX_FORGE_RETRIES:
            log.warning("run %s: could not read its downstream config: %s", run_id, exc.message)
            return
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None


@shared_task(bind=True, max_retries=None)
def start_for_comment(  # type: ignore[no-untyped-def]
    self, forge_id: int, project: str, number: int, person: str, only: list[str] | None
) -> None:
    from chains.models import Forge

    forge = Forge.objects.get(pk=forge_id)
    try:
        event = planning.current_change(forge, project, number, person)
        planning.handle_change(forge, event, None, only=frozenset(only) if only else None)
    except ForgeError as exc:
        if exc.permanent or self.request.retries >= settings.BATON_MAX_FORGE_RETRIES:
            log.warning("could not start %s!%s for %s: %s", project, number, person, exc.message)
            return
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None


@shared_task
def release_runs(chain_id: int) -> None:
    tracking.release(chain_id)


@shared_task(soft_time_limit=SWEEP_SOFT_LIMIT, time_limit=SWEEP_HARD_LIMIT)
def sweep() -> dict[str, int]:
    """Pick up what a lost enqueue or a dead worker left behind, and poll quiet runs."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BATON_STALE_AFTER)
    deliveries = list(
        Delivery.objects.filter(processed_at__isnull=True, received_at__lt=stale).values_list(
            "pk", flat=True
        )[:500]
    )
    for delivery_id in deliveries:
        process_delivery.delay(delivery_id)
    runs = list(
        Run.objects.filter(status__in=sorted(NOT_YET_SENT), created_at__lt=stale)
        .exclude(dispatch=Run.Dispatch.SENT)
        .exclude(status=Status.WAITING, not_before__isnull=True)  # waits for other runs
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(not_before__isnull=True) | Q(not_before__lt=stale))
        .values_list("pk", flat=True)[:1000]
    )
    for run_id in runs:
        trigger_run.delay(run_id)
    quiet = now - timedelta(seconds=settings.BATON_POLL_AFTER)
    quiet_hooked = now - timedelta(seconds=settings.BATON_POLL_AFTER_HOOKED)
    polls = list(
        Run.objects.filter(status__in=sorted(ACTIVE), dispatch=Run.Dispatch.SENT)
        .filter(
            Q(last_seen_at__isnull=True)
            | Q(hooked=False, last_seen_at__lt=quiet)
            | Q(hooked=True, last_seen_at__lt=quiet_hooked)
        )
        .values_list("pk", flat=True)[:500]
    )
    for run_id in polls:
        poll_run.delay(run_id)
    waiting = list(
        Run.objects.filter(status=Status.WAITING, not_before__isnull=True, created_at__lt=stale)
        .values_list("chain_id", flat=True)
        .distinct()[:200]
    )
    for chain_id in waiting:
        release_runs.delay(chain_id)
    mirrors = list(
        Chain.objects.filter(mirror_requested_at__lt=stale).values_list("pk", flat=True)[:500]
    )
    for chain_id in mirrors:
        mirror_chain.delay(chain_id)
    return {
        "deliveries": len(deliveries),
        "runs": len(runs),
        "polls": len(polls),
        "mirrors": len(mirrors),
    }
