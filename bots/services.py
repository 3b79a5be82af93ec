"""Domain verbs: one function each, called alike by the dashboard, the API, comment commands
and tasks. Each records who asked, from where, in the audit log."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bots.engine import request_mirror
from chains import audit
from chains.models import Chain, Run
from chains.status import ACTIVE, Status


class ActionRefused(Exception):
    """The action cannot be done; the message says why, in words."""


def cancel_run(run: Run, *, actor: str, surface: str, reason: str = "") -> bool:
    """Cancel one run. False when it had already finished (nothing changes)."""
    from bots import tasks

    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status not in ACTIVE:
            return False
        if run.dispatch == Run.Dispatch.IDLE and not run.remote_id:
            run.status = Status.CANCELED
            run.finished_at = timezone.now()
            run.error = reason or f"canceled by {actor}"
            run.save(update_fields=["status", "finished_at", "error"])
            request_mirror(run.chain_id)
        else:
            # Sent, or being sent: the forge must cancel it (the sender checks this flag too).
            run.cancel_requested = True
            run.error = reason or f"canceled by {actor}"
            run.save(update_fields=["cancel_requested", "error"])
            if run.remote_id:
                transaction.on_commit(lambda: tasks.cancel_remote.delay(run.pk))
        audit.record(
            "run.cancel",
            actor=actor,
            surface=surface,
            run=run,
            target=run.repository.path,
            detail={"reason": reason},
        )
    return True


def cancel_chain(
    chain: Chain, *, actor: str, surface: str, reason: str = "", only_interruptible: bool = False
) -> int:
    """Cancel every active run of the chain; returns how many were canceled."""
    runs = chain.runs.filter(status__in=sorted(ACTIVE))
    if only_interruptible:
        runs = runs.filter(interruptible=True)
    return sum(cancel_run(run, actor=actor, surface=surface, reason=reason) for run in runs)


def retry_run(run: Run, *, actor: str, surface: str) -> Run:
    """Run a failed or canceled run again (a new attempt). Refused while it is still active."""
    from bots import tasks

    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status not in (Status.FAILED, Status.CANCELED):
            raise ActionRefused(f"{run.key} is {run.status}; only failed or canceled runs retry")
        run.attempt += 1
        run.error = ""
        run.finished_at = None
        run.cancel_requested = False
        if run.remote_id:
            run.status = Status.PENDING
            transaction.on_commit(lambda: tasks.retry_remote.delay(run.pk))
        else:
            run.status = Status.QUEUED
            run.not_before = None
            run.send_attempts = 0
            transaction.on_commit(lambda: tasks.trigger_run.delay(run.pk))
        run.save()
        audit.record(
            "run.retry",
            actor=actor,
            surface=surface,
            run=run,
            target=run.repository.path,
            detail={"attempt": run.attempt},
        )
        request_mirror(run.chain_id)
    return run
