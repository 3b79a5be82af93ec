"""Celery tasks: thin, keyed by primary key, safe to run twice."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots import backoff, kicks, router
from bots.engine import failures, fanout, flaky, mirroring, planning, polling, tracking, triggering
from bots.events import PipelineEvent
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains import runstate
from chains.models import Chain, Delivery, Forge, Run
from chains.status import NOT_YET_SENT, Status

log = logging.getLogger(__name__)

# Every task has the soft and hard time limits of settings (CELERY_TASK_SOFT_TIME_LIMIT and
# CELERY_TASK_TIME_LIMIT); these tasks have tighter ones. A sender stops before its claim on the
# run (BATON_TRIGGER_LEASE) runs out, so no second worker sends while it still might.
SWEEP_SOFT_LIMIT = min(settings.CELERY_TASK_SOFT_TIME_LIMIT, 30)
SWEEP_HARD_LIMIT = min(settings.CELERY_TASK_TIME_LIMIT, 40)
_LEASE = settings.BATON_TRIGGER_LEASE
TRIGGER_SOFT_LIMIT = max(1, min(settings.CELERY_TASK_SOFT_TIME_LIMIT, int(_LEASE * 0.75)))
TRIGGER_HARD_LIMIT = max(2, min(settings.CELERY_TASK_TIME_LIMIT, int(_LEASE * 0.9)))
RATE_LIMITED_RETRIES = 10_000  # rate limits always wait their turn: in effect, no cap


class ForgeTask(Task):  # type: ignore[misc]
    """A task whose transient forge errors Celery retries (``autoretry_for``), waiting as long as
    bots/backoff.py says: the forge's Retry-After, else exponential backoff with full jitter.
    Transient errors count towards BATON_MAX_FORGE_RETRIES (``max_retries``); rate limits always
    wait their turn. Permanent errors, and the last transient one, are handed to the task's own
    give-up (``forge_errors``), which says why in words instead of failing the task."""

    autoretry_for = (ForgeError,)
    retry_backoff = True
    retry_backoff_max = backoff.MAX_WAIT
    retry_jitter = True

    @property
    def max_retries(self) -> int:  # type: ignore[override]
        """BATON_MAX_FORGE_RETRIES as it is now (read when a task runs, not when it loads)."""
        return int(settings.BATON_MAX_FORGE_RETRIES)

    def retry(  # type: ignore[override]
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: Exception | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        if isinstance(exc, ForgeError):
            countdown = backoff.wait_for(exc, self.request.retries, jitter=self.retry_jitter)
            if exc.rate_limited:
                max_retries = RATE_LIMITED_RETRIES
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)


@contextmanager
def forge_errors(
    task: Task,
    give_up: Callable[[ForgeError], None],
    before_retry: Callable[[ForgeError], None] | None = None,
) -> Iterator[None]:
    """Hand a transient ForgeError on to Celery's autoretry; on a permanent one, or once the
    retries are spent (rate limits excepted), call ``give_up`` and end the task quietly."""
    try:
        yield
    except ForgeError as exc:
        cap = settings.BATON_MAX_FORGE_RETRIES if task.max_retries is None else task.max_retries
        spent = task.request.retries >= cap and not exc.rate_limited
        if exc.permanent or spent:
            give_up(exc)
            return
        if before_retry is not None:
            before_retry(exc)
        raise


@shared_task(bind=True, base=ForgeTask)
def process_delivery(self, delivery_id: int) -> None:  # type: ignore[no-untyped-def]
    def give_up(exc: ForgeError) -> None:
        router.fail(delivery_id, exc.message)

    def noted(exc: ForgeError) -> None:
        router.note(delivery_id, f"will try again: {exc.message}")

    try:
        with forge_errors(self, give_up, noted):
            router.process(delivery_id)
    except ForgeError:
        raise  # retried by Celery
    except SoftTimeLimitExceeded:
        limit = self.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
        log.warning("delivery %s: gave up after %s s", delivery_id, limit)
        router.fail(
            delivery_id,
            f"gave up: handling it took longer than {limit:g} s (BATON_TASK_SOFT_TIME_LIMIT); "
            "process it again from the admin once the cause is fixed",
        )
    except Exception as exc:
        log.exception("delivery %s could not be handled", delivery_id)
        router.fail(delivery_id, f"internal error: {type(exc).__name__}")


@shared_task(soft_time_limit=TRIGGER_SOFT_LIMIT, time_limit=TRIGGER_HARD_LIMIT)
def trigger_run(run_id: int) -> None:
    # Not a ForgeTask: a run counts its own sends (BATON_MAX_RUN_ATTEMPTS) and is re-sent by
    # triggering.trigger itself, which looks before sending again when an earlier try may have
    # reached the forge.
    try:
        triggering.trigger(run_id)
    except SoftTimeLimitExceeded:
        # The claim runs out and the sweeper tries again, up to BATON_MAX_RUN_ATTEMPTS sends.
        log.warning("run %s: sending took longer than %s s", run_id, TRIGGER_SOFT_LIMIT)
        Run.objects.filter(pk=run_id).update(
            error=f"sending took longer than {TRIGGER_SOFT_LIMIT} s; will try again"
        )


@shared_task(bind=True, base=ForgeTask)
def mirror_chain(self, chain_id: int) -> None:  # type: ignore[no-untyped-def]
    def give_up(exc: ForgeError) -> None:
        # The chain's next change asks for a mirror again.
        log.warning("chain %s: mirroring failed, given up: %s", chain_id, exc.message)

    with forge_errors(self, give_up):
        if not mirroring.mirror(chain_id):
            # Another worker is mirroring it: come back in a moment (not a forge error).
            raise self.retry(countdown=1.0, max_retries=RATE_LIMITED_RETRIES)


@shared_task(bind=True, max_retries=None)
def poll_run(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    # Not retried: the sweeper polls a quiet run again (BATON_POLL_AFTER).
    try:
        tracking.poll(run_id)
    except ForgeError as exc:
        log.warning("run %s: polling failed: %s", run_id, exc.message)


@shared_task
def poll_repository(repository_id: int) -> None:
    # Not retried: the sweeper polls the repository again while its runs are due.
    try:
        polling.poll_repository(repository_id)
    except ForgeError as exc:
        log.warning("repository %s: polling failed: %s", repository_id, exc.message)


@shared_task
def check_end(run_id: int, attempt: int, due_at: float) -> None:
    # Not retried: the run is due for the ordinary poll in time (BATON_POLL_AFTER_HOOKED).
    try:
        polling.poll_if_overdue(run_id, attempt, due_at)
    except ForgeError as exc:
        log.warning("run %s: checking its end failed: %s", run_id, exc.message)


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
            # The forge's times, not the moment of the call: a pipeline that had ended before a
            # cancel reached it ended then (the targets' durations are read from these).
            started_at=remote.started_at,
            finished_at=remote.finished_at,
        ),
        None,
    )


@shared_task(bind=True, base=ForgeTask)
def cancel_remote(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    def give_up(exc: ForgeError) -> None:
        remote_id = Run.objects.filter(pk=run_id).values_list("remote_id", flat=True).first()
        if exc.status_code == tracking.NOT_FOUND and remote_id and tracking.gone(run_id, remote_id):
            return  # nothing runs any more: canceled, as asked
        Run.objects.filter(pk=run_id).update(error=f"could not cancel: {exc.message}")

    with forge_errors(self, give_up):
        _remote_action(run_id, "cancel")


def _retry_failed(run_id: int, exc: ForgeError) -> None:
    """The forge would not run the pipeline again: the new attempt fails, in words."""
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).filter(pk=run_id).first()
        if run is None:
            return
        if runstate.move(run, Status.FAILED, error=f"could not retry: {exc.message}"):
            run.save(update_fields=["status", "finished_at", "error"])
            tracking.settle_later(run.chain_id)
        mirroring.request_mirror(run.chain_id)


@shared_task(bind=True, base=ForgeTask)
def retry_remote(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    with forge_errors(self, lambda exc: _retry_failed(run_id, exc)):
        _remote_action(run_id, "retry")


@shared_task(bind=True, base=ForgeTask)
def rerun_chain(self, chain_id: int, actor: str, user_id: int | None = None) -> None:  # type: ignore[no-untyped-def]
    def give_up(exc: ForgeError) -> None:
        log.warning("chain %s could not be re-run: %s", chain_id, exc.message)

    with forge_errors(self, give_up):
        planning.rerun_change(chain_id, actor, user_id=user_id)


@shared_task(bind=True, base=ForgeTask)
def expand_run(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    def give_up(exc: ForgeError) -> None:
        log.warning("run %s: could not read its downstream config: %s", run_id, exc.message)

    with forge_errors(self, give_up):
        planning.expand_run(run_id)


@shared_task(bind=True, base=ForgeTask)
def start_for_comment(  # type: ignore[no-untyped-def]
    self, forge_id: int, project: str, number: int, person: str, only: list[str] | None
) -> None:
    def give_up(exc: ForgeError) -> None:
        log.warning("could not start %s!%s for %s: %s", project, number, person, exc.message)

    forge = Forge.objects.get(pk=forge_id)
    with forge_errors(self, give_up):
        event = planning.current_change(forge, project, number, person)
        planning.handle_change(forge, event, None, only=frozenset(only) if only else None)


@shared_task(bind=True, base=ForgeTask)
def fetch_failed_jobs(self, run_id: int, remote_id: str, attempt: int) -> None:  # type: ignore[no-untyped-def]
    def give_up(exc: ForgeError) -> None:
        # The run keeps its end; it just shows no reason (and a `retry:` decides without one).
        log.warning("run %s: could not read its failed jobs: %s", run_id, exc.message)
        failures.unexplained(run_id, remote_id, attempt, then=flaky.retry_if_flaky)

    with forge_errors(self, give_up):
        failures.fetch(run_id, remote_id, attempt, then=flaky.retry_if_flaky)


@shared_task(soft_time_limit=TRIGGER_SOFT_LIMIT, time_limit=TRIGGER_HARD_LIMIT)
def trigger_runs(run_ids: list[int]) -> None:
    """A fan-out (bots/engine/fanout.py). Each chunk's runs are claimed just before they are
    sent, so the limits stay below each claim's lease as for ``trigger_run``; runs a time limit
    leaves unsent are still queued, and the sweeper sends them."""
    try:
        fanout.trigger_many([int(i) for i in run_ids])
    except SoftTimeLimitExceeded:
        log.warning("runs %s…: sending took longer than %s s", run_ids[:3], TRIGGER_SOFT_LIMIT)


@shared_task
def release_runs(chain_id: int) -> None:
    tracking.release(chain_id)


@shared_task(soft_time_limit=SWEEP_SOFT_LIMIT, time_limit=SWEEP_HARD_LIMIT)
def sweep() -> dict[str, int]:
    """Pick up what a lost enqueue or a dead worker left behind, and poll quiet runs."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BATON_STALE_AFTER)
    deliveries = list(
        Delivery.objects.filter(processed_at__isnull=True, received_at__lt=stale)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))  # a live worker has it
        .values_list("pk", "forge__kind", "event")[:500]
    )
    for delivery_id, forge_kind, event in deliveries:
        kicks.deliver(delivery_id, forge_kind, event)
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
    # Lost webhooks: one list call per repository for all its open runs (bots/engine/polling.py).
    polling.note_hooks(now)
    repositories, polls = polling.due(now)
    for repository_id in repositories:
        poll_repository.delay(repository_id)
    for run_id in polls[:500]:
        poll_run.delay(run_id)
    waiting = list(
        Run.objects.filter(status=Status.WAITING, not_before__isnull=True, created_at__lt=stale)
        .values_list("chain_id", flat=True)
        .distinct()[:200]
    )
    for chain_id in waiting:
        release_runs.delay(chain_id)
    # Failed runs whose `retry:` waits for their reasons, when that read was lost (a dead worker).
    unread = [
        (pk, remote_id, attempt)
        for pk, remote_id, attempt, retry_max, read in Run.objects.filter(
            status=Status.FAILED, retry_max__gt=0, cancel_requested=False, finished_at__lt=stale
        )
        .exclude(remote_id="")
        .values_list("pk", "remote_id", "attempt", "retry_max", "failed_jobs__attempt")[:200]
        if retry_max >= attempt and read != attempt
    ]
    for run_id, remote_id, attempt in unread:
        fetch_failed_jobs.delay(run_id, remote_id, attempt)
    mirrors = list(
        Chain.objects.filter(mirror_requested_at__lt=stale).values_list("pk", flat=True)[:500]
    )
    for chain_id in mirrors:
        mirror_chain.delay(chain_id)
    return {
        "deliveries": len(deliveries),
        "runs": len(runs),
        "polls": len(polls) + len(repositories),
        "mirrors": len(mirrors),
    }
