"""From forge news to runs: status changes (never backwards within an attempt), matching
events to runs, polling quiet runs, and releasing runs whose dependencies have finished."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from bots import kicks, logcontext, metrics
from bots.engine import expansion, failures, overdue
from bots.engine.mirroring import request_mirror
from bots.events import NONCE_VARIABLE, RUN_ID_VARIABLE, PipelineEvent
from bots.forges.base import Forge as BaseForge
from bots.forges.base import ForgeError, RemotePipeline, marker_in
from bots.forges.registry import forge_for
from chains import audit, runstate
from chains.models import AuditEvent, Delivery, Forge, Run
from chains.redaction import PRIVATE, hidden_runs
from chains.runstate import blockers, ready, waits_on_others
from chains.status import ACTIVE, FINISHED, Status

log = logging.getLogger(__name__)

__all__ = ["NONCE_VARIABLE", "RUN_ID_VARIABLE", "ready", "waits_on_others"]

MAX_UNMATCHED = 200  # sent runs of one project awaiting their pipeline, checked per event
_PIPELINE_ID = re.compile(r"[0-9]{1,20}")


def apply_status(
    run: Run,
    status: Status,
    *,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> bool:
    """Move a run to what the forge says, never backwards within one attempt
    (chains/runstate.py). The caller saves the run; when it finished, runs waiting for it are
    released after commit."""
    earlier_end = None
    if run.attempt > 1 and (
        (status in FINISHED and finished_at is not None)
        or (started_at is not None and run.started_at is None)
    ):
        # A retry of the same pipeline: its earlier end, read late, is not this attempt's, and
        # the start it reports (GitLab's pipeline hook: its first creation) is not this one's.
        previous = run.attempts.filter(number=run.attempt - 1)
        earlier_end = previous.values_list("finished_at", flat=True).first()
    changed, ended = runstate.apply_report(
        run, status, started_at=started_at, finished_at=finished_at, earlier_end=earlier_end
    )
    if ended:
        settle_later(run.chain_id)
        failures.fetch_later(run)  # why it failed, read by another task
    return changed


# What a pipeline event changes on its run (``handle_pipeline``, ``apply_status``).
HEARD = (
    "remote_id",
    "dispatch",
    "triggered_at",
    "web_url",
    "last_seen_at",
    "hooked",
    "status",
    "started_at",
    "finished_at",
    "error",
)


def handle_pipeline(forge: Forge, event: PipelineEvent, delivery: Delivery | None) -> str:
    """Apply a pipeline event to the run it belongs to. An event from a webhook (``delivery``) is
    a claim: it is matched only to a run in the very project it names, a pipeline Baton did not
    identify yet is adopted only by the run's secret nonce, and a final status is read back from
    the forge before it finishes the run. Raises ForgeError when that read fails for a while."""
    candidate = _matching_run(forge, event)
    if candidate is None:
        return "not a pipeline Baton triggered"
    logcontext.bind(chain_id=candidate.chain_id, run_id=candidate.pk)
    if candidate.status == event.status and event.status in FINISHED:
        return f"run {candidate.pk} is {candidate.status}"  # a repeat: nothing to read back
    if _no_news(candidate, event) and _heard(candidate, event, delivery):
        return f"run {candidate.pk} is {candidate.status}"
    status, started_at, finished_at = event.status, event.started_at, event.finished_at
    if delivery is not None and status in FINISHED:
        try:
            remote = forge_for(forge).get_pipeline(candidate.repository.path, event.pipeline_id)
        except ForgeError as exc:
            if exc.permanent:
                return (
                    f"not applied: pipeline {event.pipeline_id} could not be read back from "
                    f"{candidate.repository.path} ({exc.message})"
                )
            # The delivery is retried; meanwhile the poller may find the end first.
            Run.objects.filter(pk=candidate.pk).update(hooked=False)
            raise
        status, started_at, finished_at = remote.status, remote.started_at, remote.finished_at
    with transaction.atomic():
        run = Run.objects.locked(candidate.pk, LOCKED)
        if run is None or not _still_matches(run, event):
            return "not a pipeline Baton triggered"
        before = run.status, run.dispatch
        if not run.remote_id:
            # The event beat the create call's answer: adopt the pipeline now.
            run.remote_id, run.dispatch = event.pipeline_id, Run.Dispatch.SENT
            run.triggered_at = run.triggered_at or timezone.now()
        run.web_url = event.web_url or run.web_url
        run.last_seen_at = timezone.now()
        if delivery is not None and event.status in FINISHED and status not in FINISHED:
            run.hooked = False  # the forge does not confirm the end yet: poll it soon
        else:
            run.hooked = run.hooked or delivery is not None
        changed = apply_status(run, status, started_at=started_at, finished_at=finished_at)
        run.save(update_fields=HEARD)
        if changed:
            request_mirror(run.chain_id, settle=not runstate.keeps_chain_as_is(run, *before))
            if delivery is not None and run.status == Status.RUNNING:
                overdue.watch(run, run.last_seen_at)  # in case its last webhook is lost
    return f"run {run.pk} is {run.status}"


# What news is applied to (``HEARD``, the matching's re-check, ``apply_status``, the settling
# and the failures' fetch read no more): not the run's encrypted variables, nor its other
# columns, which a webhook never changes.
LOCKED = (
    *HEARD,
    "chain",
    "attempt",
    "soft_fail",
    "strategy",
    "nonce",
    "workflow",
    "sent_at",
    "created_at",
    "repository",
)


def _no_news(run: Run, event: PipelineEvent) -> bool:
    """Whether the event tells nothing the run does not show already: its identified pipeline
    in the same unfinished status (GitLab's "created" and "pending" both read as pending, the
    create call's answer said so too), with nothing else to record but that the forge spoke
    (and, from a webhook, that webhooks come: ``hooked``). Most of a fan-out's pipeline
    webhooks are such repeats, the first of each run's among them."""
    return (
        bool(run.remote_id)
        and run.remote_id == event.pipeline_id
        and run.status == event.status
        and event.status not in FINISHED
        and (run.started_at is not None or event.status not in (Status.RUNNING, Status.MANUAL))
        and (not event.web_url or event.web_url == run.web_url)
    )


def _heard(run: Run, event: PipelineEvent, delivery: Delivery | None) -> bool:
    """Note that the forge spoke of the run (for the poller; a webhook also marks the run
    ``hooked``), without its row lock: False when the run moved meanwhile, and the event is
    then applied in full. The dashboard's cursor (``updated_at``) stays: nothing it shows
    changed."""
    return Run.objects.heard(run.pk, event.pipeline_id, event.status, hooked=delivery is not None)


# What a matched run is read with (and its repository's path and id): what the matching, the
# repeat check and the marker read (a run's ~50 columns built into a model were most of a
# webhook's match). News is applied to the run read again under its lock (``LOCKED``).
MATCHED = (
    "chain",
    "status",
    "remote_id",
    "started_at",
    "web_url",
    "dispatch",
    "nonce",
    "workflow",
    "sent_at",
    "created_at",
    "repository",
)


def _matching_run(forge: Forge, event: PipelineEvent) -> Run | None:
    """The run an event is about: by (target repository, remote id), or, for a pipeline Baton
    has not identified yet, by the marker Baton put on it. Never by an id alone."""
    if not _PIPELINE_ID.fullmatch(event.pipeline_id):
        return None
    run = Run.objects.of_pipeline(forge.pk, event.project, event.pipeline_id, MATCHED)
    if run is None:
        in_project = (
            Run.objects.select_related("repository")
            .only(*MATCHED, "repository__path", "repository__remote_id")
            .filter(repository__forge=forge, repository__path__iexact=event.project)
        )
        run = _marked_run(in_project, event)
    if run is None or not same_project(run, event):
        return None
    return run


def _still_matches(run: Run, event: PipelineEvent) -> bool:
    """Re-checked under the row lock: the run may have been identified or re-sent meanwhile."""
    if run.remote_id:
        return run.remote_id == event.pipeline_id and same_project(run, event)
    return _carries_marker(run, event)


def same_project(run: Run, event: PipelineEvent) -> bool:
    """Whether the event's project is the run's target (by path, and by id when both are known)."""
    if run.repository.path.lower() != event.project.lower():
        return False
    known, said = run.repository.remote_id, event.project_id
    return not (known and said and known != said)


def _marked_run(in_project: QuerySet[Run], event: PipelineEvent) -> Run | None:
    """A sent run of this project, not yet matched to a pipeline, whose marker the event shows."""
    waiting = in_project.filter(
        remote_id="", dispatch__in=[Run.Dispatch.SENT, Run.Dispatch.SENDING]
    )
    marker = event.variables.get(RUN_ID_VARIABLE, "")
    if marker:
        if not marker.isdigit() or len(marker) > 18:
            return None
        waiting = waiting.filter(pk=int(marker))
    elif not event.marker_text:
        return None
    for run in waiting.order_by("pk")[:MAX_UNMATCHED]:
        if _carries_marker(run, event):
            return run
    return None


def _carries_marker(run: Run, event: PipelineEvent) -> bool:
    """The pipeline shows this run's nonce (a variable, or in a GitHub run's title), was created
    after the run was sent, and (GitHub) ran the workflow Baton dispatched."""
    if run.dispatch not in (Run.Dispatch.SENT, Run.Dispatch.SENDING) or not run.nonce:
        return False
    if RUN_ID_VARIABLE in event.variables or NONCE_VARIABLE in event.variables:
        shown = event.variables.get(NONCE_VARIABLE, "")
        if event.variables.get(RUN_ID_VARIABLE) != str(run.pk):
            return False
        if not constant_time_compare(shown, run.nonce):
            return False
    elif not marker_in(event.marker_text, run.nonce):
        return False
    if event.workflow and run.workflow and not _same_workflow(event.workflow, run.workflow):
        return False
    return created_after_send(run, event.created_at)


def _same_workflow(path: str, workflow: str) -> bool:
    return path == workflow or path.rsplit("/", 1)[-1] == workflow


def created_after_send(run: Run, created_at: datetime | None) -> bool:
    """Whether a pipeline created then can be the run's current send (allowing for clock skew
    between Baton and the forge). A forge that does not say when is given the benefit: the nonce
    still has to match."""
    since = run.sent_at or run.created_at
    if created_at is None or since is None:
        return True
    return created_at >= since - timedelta(seconds=settings.BATON_MARKER_CLOCK_SKEW)


def marker(run: Run) -> tuple[str, str]:
    """What a look-up for the run's pipeline searches for."""
    return (NONCE_VARIABLE, run.nonce)


def find_sent(forge: BaseForge, run: Run, ref: str) -> RemotePipeline | None:
    """The pipeline this run's current send created, looked up on the run's own target: it
    carries the run's nonce and was created after the send began. Raises ForgeError when the
    forge cannot be asked (then nobody knows yet)."""
    since = (run.sent_at or run.created_at) - timedelta(seconds=settings.BATON_MARKER_CLOCK_SKEW)
    found = forge.find_pipeline(
        run.repository.path, ref, marker(run), since, workflow=run.workflow or None
    )
    if found is None or not created_after_send(run, found.created_at):
        return None
    return found


def poll(run_id: int) -> None:
    """The fallback for lost webhooks: ask the forge where an active run stands."""
    run = Run.objects.select_related("repository__forge").filter(pk=run_id).first()
    if run is None or run.status not in ACTIVE or run.dispatch != Run.Dispatch.SENT:
        return
    Run.objects.filter(pk=run_id).update(last_seen_at=timezone.now())
    forge = forge_for(run.repository.forge)
    if not run.remote_id:
        found = find_sent(forge, run, run.ref)
        if found is not None:
            record_triggered(run.pk, found, run.ref)
        return
    try:
        remote = forge.get_pipeline(run.repository.path, run.remote_id)
    except ForgeError as exc:
        if exc.status_code != NOT_FOUND:
            raise
        gone(run.pk, run.remote_id)
        return
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).get(pk=run_id)
        if apply_status(
            run, remote.status, started_at=remote.started_at, finished_at=remote.finished_at
        ):
            run.save()
            request_mirror(run.chain_id)


NOT_FOUND = 404


def gone(run_id: int, remote_id: str) -> bool:
    """The forge answers 404 for the run's pipeline: it was deleted there, or Baton lost access
    to the project. It can no longer be followed, so the run ends in words instead of staying
    active for ever: canceled when a cancel was asked for, else failed (a retry sends a new
    one). A finished run, or one that moved to another pipeline meanwhile, is left as it is.
    True when the run ended here."""
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("repository")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status not in ACTIVE or run.remote_id != remote_id:
            return False
        end = Status.CANCELED if run.cancel_requested else Status.FAILED
        why = (
            f"pipeline {remote_id} is gone from {run.repository.path}: the forge answers 404 "
            "for it (deleted there, or Baton's token lost access to the project)"
        )
        runstate.move(run, end, error=why)
        run.save(update_fields=["status", "error", "finished_at"])
        request_mirror(run.chain_id)
        settle_later(run.chain_id)
    log.warning("run %s: pipeline %s is gone from the forge", run_id, remote_id)
    return True


def record_triggered(run_id: int, remote: RemotePipeline, ref: str) -> None:
    """The forge has the run (a create call answered, or a look-up found the pipeline)."""
    record_many([(run_id, remote, ref)])


def record_many(sent: list[tuple[int, RemotePipeline, str]]) -> None:
    """``record_triggered`` for several runs in one transaction: the runs are locked (in id
    order) and saved each as that would, and each chain is settled and mirrored once."""
    now = timezone.now()
    with transaction.atomic():
        locked = {
            run.pk: run
            for run in Run.objects.select_for_update(of=("self",))
            .select_related("chain", "repository__forge")
            .only(*RECORD_READS)
            .filter(pk__in=[run_id for run_id, _, _ in sent])
            .order_by("pk")
        }
        chains: set[int] = set()
        recorded: list[Run] = []
        events: list[AuditEvent] = []
        for run_id, remote, ref in sent:
            run = locked.get(run_id)
            if run is None:
                log.warning(
                    "run %s was deleted before its pipeline %s was recorded", run_id, remote.id
                )
                continue
            events.append(_record(run, remote, ref, now))
            recorded.append(run)
            chains.add(run.chain_id)
        Run.objects.save_each(recorded, RECORDED)
        audit.record_all(events)
        for chain_id in sorted(chains):
            request_mirror(chain_id)


# What recording a send changes on a run (``_record``, ``runstate.sent``, ``apply_status``):
# saved alone, the rest of the row (its encrypted variables among it) is not written again.
RECORDED = (
    "remote_id",
    "web_url",
    "ref",
    "undelivered",
    "dispatch",
    "lease_until",
    "reserved_at",
    "not_before",
    "error",
    "status",
    "triggered_at",
    "last_seen_at",
    "started_at",
    "finished_at",
)


# What recording a send reads of a run besides (``_record``, ``apply_status``): its chain and
# forge only as the audit event's link and the metric's label (a run, its chain and its forge
# built whole were half of a record's CPU).
RECORD_READS = (
    *RECORDED,
    "attempt",
    "cancel_requested",
    "reused_from",
    "chain__id",
    "repository__path",
    "repository__forge__slug",
)


def _record(run: Run, remote: RemotePipeline, ref: str, now: datetime) -> AuditEvent:
    """Apply what the forge answered to the run (the caller holds its row lock and saves its
    ``RECORDED``); returns the audit event of the trigger, for the caller to write with the
    others."""
    run.remote_id = remote.id  # "" until the forge's run is identified by its marker
    run.web_url = remote.web_url
    run.ref = ref
    run.undelivered = list(remote.undelivered)
    run.dispatch = Run.Dispatch.SENT
    run.lease_until = None
    run.reserved_at = None
    run.not_before = None
    run.error = ""
    runstate.sent(run)
    run.triggered_at = run.triggered_at or now
    run.last_seen_at = now
    apply_status(run, remote.status, started_at=remote.started_at, finished_at=remote.finished_at)
    run.error = remote.note or run.error  # e.g. a re-run that reused a finished pipeline
    metrics.trigger(run.repository.forge.slug, "triggered")
    if run.cancel_requested and run.status in ACTIVE and run.remote_id:
        kicks.cancel_remote(run.pk)
    elif run.reused_from_id is None and expansion.may_trigger(run.repository_id, run.ref):
        # What the target's own .baton.yml triggers in turn (nested chains).
        kicks.expand(run.pk)
    return audit.event(
        "run.trigger",
        actor="baton",
        surface="system",
        run=run,
        target=f"{run.repository.path}@{ref}",
        detail={"pipeline": remote.id},
    )


# --- dependencies ------------------------------------------------------------------------------


def settle_later(chain_id: int) -> None:
    """After commit, release what waited for a run that just finished."""
    transaction.on_commit(lambda: release(chain_id))


def release(chain_id: int) -> list[int]:
    """Start the runs whose dependencies have all finished; skip those whose did not pass
    (chains/runstate.py decides which). Returns the runs now queued.

    A chain with no run waiting for others has nothing to release: that is looked at first,
    without locking or reading its runs (each end of a 1,000-run fan-out's runs would otherwise
    read all 1,000 under lock). A run made to wait after the look (a nested expansion, a retry)
    is released by its own maker or, at the latest, by the sweeper."""
    queued: list[int] = []
    if not Run.objects.filter(
        chain_id=chain_id, status=Status.WAITING, not_before__isnull=True
    ).exists():
        return queued
    with transaction.atomic():
        family = list(
            Run.objects.select_for_update(of=("self",))
            .select_related("repository", "chain__repository")
            .filter(chain_id=chain_id)
            .order_by("pk")
        )
        now = timezone.now()
        settled = runstate.releases(family)
        for step in settled:
            run = step.run
            assert isinstance(run, Run)
            if step.status == Status.SKIPPED:
                names = ", ".join(dict.fromkeys(_name(f, family) for f in step.failed))  # type: ignore[arg-type]
                runstate.move(
                    run, Status.SKIPPED, error=f"not run: {names} did not succeed", now=now
                )
            else:
                runstate.move(run, Status.QUEUED, error="")
                queued.append(run.pk)
            run.save(update_fields=["status", "error", "finished_at"])
        if settled:
            request_mirror(chain_id)
        kicks.trigger_all(queued)
    return queued


def _name(run: Run, family: list[Run]) -> str:
    """A run as the upstream change's readers may know it (the text reaches its comment)."""
    if run.pk in hidden_runs(run.chain.repository, family):
        return PRIVATE
    return run.label or run.key


def waiting_reason(run: Run, family: list[Run]) -> str:
    unfinished, _ = blockers(run, family)
    names = (getattr(r, "label", "") or r.key for r in unfinished)
    return "waiting for " + ", ".join(names) if unfinished else ""
