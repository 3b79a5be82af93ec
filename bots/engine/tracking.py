"""From forge news to runs: status changes (never backwards within an attempt), matching
events to runs, polling quiet runs, and releasing runs whose dependencies have finished."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.engine.mirroring import request_mirror
from bots.events import PipelineEvent
from bots.forges.registry import forge_for
from chains.models import Delivery, Forge, Run
from chains.redaction import PRIVATE, hidden_runs
from chains.status import ACTIVE, FINISHED, Status

RUN_ID_VARIABLE = "BATON_RUN_ID"
_RANK = {
    Status.QUEUED: 0,
    Status.WAITING: 0,
    Status.PENDING: 1,
    Status.RUNNING: 2,
    Status.MANUAL: 2,
}


def apply_status(
    run: Run,
    status: Status,
    *,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> bool:
    """Move a run to what the forge says, never backwards within one attempt. The caller saves
    the run; when it finished, runs waiting for it are released after commit."""
    current = Status(run.status)
    if current in FINISHED and status in FINISHED:
        changed = current != status
    elif current in FINISHED:
        return False  # a late event from before the end
    elif status not in FINISHED and _RANK.get(status, 0) < _RANK.get(current, 0):
        return False
    else:
        changed = current != status
    run.status = status
    now = timezone.now()
    if status in (Status.RUNNING, Status.MANUAL) and run.started_at is None:
        run.started_at = started_at or now
    if status in FINISHED:
        run.finished_at = finished_at or now
        run.started_at = run.started_at or run.finished_at
        if changed:
            settle_later(run.chain_id)
    if status == Status.SUCCESS:
        run.error = ""  # e.g. a cancel that came too late: the run is simply green
    return changed


def handle_pipeline(forge: Forge, event: PipelineEvent, delivery: Delivery | None) -> str:
    query = Q(repository__forge=forge, remote_id=event.pipeline_id)
    marker = event.variables.get(RUN_ID_VARIABLE, "")
    if marker.isdigit():
        query |= Q(repository__forge=forge, pk=int(marker), remote_id="")
    elif event.marker_text:
        query |= Q(pk__in=_marked_runs(forge, event))
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).filter(query).order_by("pk").first()
        if run is None:
            return "not a pipeline Baton triggered"
        if not run.remote_id:
            # The event beat the create call's answer: adopt the pipeline now.
            run.remote_id, run.dispatch = event.pipeline_id, Run.Dispatch.SENT
            run.triggered_at = run.triggered_at or timezone.now()
        run.web_url = event.web_url or run.web_url
        run.last_seen_at = timezone.now()
        run.hooked = run.hooked or delivery is not None
        changed = apply_status(
            run, event.status, started_at=event.started_at, finished_at=event.finished_at
        )
        run.save()
        if changed:
            request_mirror(run.chain_id)
    return f"run {run.pk} is {run.status}"


def mentions_run(text: str, run_id: int) -> bool:
    """Whether a run's title shows this BATON_RUN_ID as a whole word."""
    return re.search(rf"(?<![\w-]){run_id}(?![\w-])", text) is not None


def _marked_runs(forge: Forge, event: PipelineEvent) -> list[int]:
    """Sent runs not yet matched to a forge run whose id the event's title shows."""
    waiting = Run.objects.filter(
        repository__forge=forge,
        repository__path=event.project,
        remote_id="",
        dispatch__in=[Run.Dispatch.SENT, Run.Dispatch.SENDING],
    ).values_list("pk", flat=True)
    return [pk for pk in waiting if mentions_run(event.marker_text, pk)][:1]


def poll(run_id: int) -> None:
    """The fallback for lost webhooks: ask the forge where an active run stands."""
    from bots.engine.sending import record_triggered

    run = Run.objects.select_related("repository__forge").filter(pk=run_id).first()
    if run is None or run.status not in ACTIVE or run.dispatch != Run.Dispatch.SENT:
        return
    Run.objects.filter(pk=run_id).update(last_seen_at=timezone.now())
    forge = forge_for(run.repository.forge)
    if not run.remote_id:
        found = forge.find_pipeline(
            run.repository.path,
            run.ref,
            (RUN_ID_VARIABLE, str(run.pk)),
            (run.triggered_at or run.created_at) - timedelta(minutes=1),
            workflow=run.workflow or None,
        )
        if found is not None:
            record_triggered(run.pk, found, run.ref)
        return
    remote = forge.get_pipeline(run.repository.path, run.remote_id)
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).get(pk=run_id)
        if apply_status(
            run, remote.status, started_at=remote.started_at, finished_at=remote.finished_at
        ):
            run.save()
            request_mirror(run.chain_id)


# --- dependencies ------------------------------------------------------------------------------


def passed(run: Run) -> bool:
    return run.status == Status.SUCCESS or (run.status == Status.FAILED and run.soft_fail)


def blockers(run: Run, family: list[Run]) -> tuple[list[Run], list[Run]]:
    """(unfinished, unsuccessful) among what ``run`` waits for: the runs of the same level it
    names in depends_on, and the run that triggered it (its parent)."""
    waits_for = [r for r in family if r.parent_id == run.parent_id and r.key in run.depends_on]
    parent = next((r for r in family if r.pk == run.parent_id), None)
    unfinished = [r for r in waits_for if r.status not in FINISHED]
    failed = [r for r in waits_for if r.status in FINISHED and not passed(r)]
    if parent is not None:
        if parent.status not in FINISHED:
            unfinished.append(parent)
        elif not passed(parent):
            failed.append(parent)
    return unfinished, failed


def ready(run: Run, family: list[Run]) -> bool:
    """Whether everything ``run`` waits for has finished in a way that lets it go."""
    unfinished, failed = blockers(run, family)
    if unfinished:
        return False
    parent_failed = any(f.pk == run.parent_id for f in failed)
    return not failed or (run.allow_dependency_failure and not parent_failed)


def settle_later(chain_id: int) -> None:
    """After commit, release what waited for a run that just finished."""
    transaction.on_commit(lambda: release(chain_id))


def waits_on_others(run: Run) -> bool:
    return bool(run.depends_on) or run.parent_id is not None


def release(chain_id: int) -> list[int]:
    """Start the runs whose dependencies have all finished; skip those whose did not pass.
    Returns the runs now queued."""
    from bots import tasks

    queued: list[int] = []
    with transaction.atomic():
        family = list(
            Run.objects.select_for_update(of=("self",))
            .select_related("repository", "chain__repository")
            .filter(chain_id=chain_id)
            .order_by("pk")
        )
        changed = True
        while changed:  # a skipped run may in turn settle runs that wait for it
            changed = False
            for run in family:
                if run.status != Status.WAITING or not waits_on_others(run) or run.not_before:
                    continue
                unfinished, failed = blockers(run, family)
                if unfinished:
                    continue
                if not ready(run, family):
                    names = ", ".join(dict.fromkeys(_name(f, family) for f in failed))
                    run.status = Status.SKIPPED
                    run.error = f"not run: {names} did not succeed"
                    run.finished_at = timezone.now()
                    changed = True
                else:
                    run.status = Status.QUEUED
                    run.error = ""
                    queued.append(run.pk)
                run.save(update_fields=["status", "error", "finished_at"])
        if queued or changed:
            request_mirror(chain_id)
        transaction.on_commit(lambda: [tasks.trigger_run.delay(pk) for pk in queued])
    return queued


def _name(run: Run, family: list[Run]) -> str:
    """A run as the upstream change's readers may know it (the text reaches its comment)."""
    if run.pk in hidden_runs(run.chain.repository, family):
        return PRIVATE
    return run.label or run.key


def waiting_reason(run: Run, family: list[Run]) -> str:
    unfinished, _ = blockers(run, family)
    return "waiting for " + ", ".join(r.label or r.key for r in unfinished) if unfinished else ""
