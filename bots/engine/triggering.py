"""From a planned run to a pipeline on its forge: exactly once, paced by the rate budgets,
retried on transient errors, and failed in words on permanent ones."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bots import backoff, kicks, metrics, throttle
from bots.engine.mirroring import request_mirror
from bots.engine.tracking import find_sent, record_triggered, settle_later
from bots.events import NONCE_VARIABLE, RUN_ID_VARIABLE
from bots.forges.base import Forge, ForgeError, RemotePipeline
from bots.forges.registry import forge_for
from chains import runstate
from chains.models import Run, new_run_nonce
from chains.runstate import ready, waits_on_others
from chains.status import ACTIVE, FINISHED, NOT_YET_SENT, Status

log = logging.getLogger(__name__)

INLINE_WAIT = 0.5  # a rate-limit wait this short is slept; a longer one is rescheduled


POLL_WHILE_WAITING = 2.0  # seconds between looks at a pipeline that `wait: true` waits for


class _Refused(Exception):
    """The run cannot go, for a reason in words (not a forge error)."""


def run_variables(run: Run) -> dict[str, str]:
    values = {
        **run.variables,
        **run.masked_variables,
        "BATON_CHAIN_ID": str(run.chain_id),
        RUN_ID_VARIABLE: str(run.pk),
        NONCE_VARIABLE: run.nonce,
        "BATON_DEPTH": str(run.depth),
    }
    if run.deploy_environment:
        values["BATON_DEPLOY_ENVIRONMENT"] = run.deploy_environment
    return values


def trigger(run_id: int) -> None:
    """Send one run to its forge, exactly once even if this runs twice or a worker dies."""
    now = timezone.now()
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("chain", "repository__forge")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status not in NOT_YET_SENT or run.dispatch == Run.Dispatch.SENT:
            return
        if run.not_before and run.not_before > now + timedelta(seconds=INLINE_WAIT):
            _schedule_trigger(run.pk, (run.not_before - now).total_seconds())
            return
        if run.dispatch == Run.Dispatch.SENDING and run.lease_until and run.lease_until > now:
            return  # another worker holds it
        if waits_on_others(run):
            family = list(Run.objects.filter(chain_id=run.chain_id))
            if not ready(run, family):
                return  # released when what it waits for has finished
        if run.send_attempts >= settings.BATON_MAX_RUN_ATTEMPTS:
            _park(run, now)
            return
        uncertain = run.dispatch == Run.Dispatch.SENDING
        if not uncertain:
            # A new send: a new secret marker, so that no pipeline from before can pass for it.
            run.nonce = new_run_nonce()
            run.sent_at = now
        run.dispatch = Run.Dispatch.SENDING
        run.lease_until = now + timedelta(seconds=settings.BATON_TRIGGER_LEASE)
        run.send_attempts += 1
        run.save(update_fields=["dispatch", "lease_until", "send_attempts", "nonce", "sent_at"])

    forge = forge_for(run.repository.forge)
    project = run.repository.path
    workflow = run.workflow or None
    ref = run.ref
    unknown = uncertain  # whether an earlier attempt may have reached the forge, as far as we know
    try:
        ref = ref or _default_branch(run)
        if uncertain:
            # An earlier attempt may have reached the forge: look before sending again.
            found = _find_earlier_send(forge, run, ref)
            if found is not None:
                record_triggered(run.pk, found, ref)
                return
            if _may_still_appear(run):
                _look_again_later(run)
                return
            unknown = False
        if run.wait_timeout and _keep_waiting(forge, run, ref):
            return
        at = run.reserved_at or throttle.reserve(forge.budgets("create", project, ref))
        if at - time.time() > INLINE_WAIT:
            _wait_for_turn(run.pk, at, uncertain=uncertain)
            return
        time.sleep(max(0.0, at - time.time()))
        throttle.gate(forge.budgets("create", project, ref))
        if not _still_ours(run):
            return  # the claim ran out while this worker waited: another one has the run now
        change = _change_pipeline(forge, run, ref)
        if run.mode == "new" and change is not None:
            remote = forge.create_change_pipeline(project, change, run_variables(run))
        elif run.mode == "new":
            remote = forge.create_pipeline(
                project,
                ref,
                run_variables(run),
                workflow=workflow,
                deploy=run.deploy_environment or None,
            )
        else:
            remote = _rerun_existing(forge, run, ref)
    except _Refused as refusal:
        _trigger_failed(run, ForgeError(str(refusal), permanent=True))
        return
    except ForgeError as exc:
        if exc.rate_limited:
            throttle.block(forge.budgets("create", project, ref), _retry_delay(exc, run))
        # A send whose outcome was unknown stays unknown until a look-up has answered.
        _trigger_failed(run, exc, uncertain=unknown)
        return
    record_triggered(run.pk, remote, ref)


def _still_ours(run: Run) -> bool:
    """Renew this worker's claim just before it sends, only if no other worker has taken the run
    over meanwhile (a fencing token: the claim's attempt number and lease). The send itself ends
    within BATON_FORGE_TIMEOUT, which settings keep shorter than the lease."""
    renewed = Run.objects.filter(
        pk=run.pk,
        dispatch=Run.Dispatch.SENDING,
        send_attempts=run.send_attempts,
        lease_until=run.lease_until,
    ).update(lease_until=timezone.now() + timedelta(seconds=settings.BATON_TRIGGER_LEASE))
    return bool(renewed)


def _may_still_appear(run: Run) -> bool:
    """Whether an earlier send may have reached the forge without its run being listed yet."""
    if run.sent_at is None:
        return False
    return timezone.now() - run.sent_at < timedelta(seconds=settings.BATON_LOOKUP_GRACE)


def _look_again_later(run: Run) -> None:
    """Keep the send uncertain and look again once the grace after it has passed."""
    assert run.sent_at is not None
    again = run.sent_at + timedelta(seconds=settings.BATON_LOOKUP_GRACE)
    Run.objects.filter(pk=run.pk, send_attempts=run.send_attempts).update(lease_until=again)
    _schedule_trigger(run.pk, max(0.1, (again - timezone.now()).total_seconds() + 0.1))


def _change_pipeline(forge: Forge, run: Run, ref: str) -> int | None:
    """The change whose own pipeline a `project: self` run on that change's ref is (GitLab: a
    merge request pipeline, which runs fork MRs in the target project); None for any other run."""
    number = run.chain.change_number
    if not run.is_child or number is None or run.repository_id != run.chain.repository_id:
        return None
    return number if ref == forge.change_ref(number) else None


def _find_earlier_send(forge: Forge, run: Run, ref: str) -> RemotePipeline | None:
    if run.mode == "new":
        return find_sent(forge, run, ref)
    # A re-run keeps the pipeline's id: if the newest one is active again, ours got through.
    recent = forge.recent_pipelines(run.repository.path, ref, workflow=run.workflow or None)
    found = next((p for p in recent[:1] if p.status in ACTIVE), None)
    return None if found is None else replace(found, undelivered=not_sent(run))


def not_sent(run: Run) -> tuple[str, ...]:
    """A re-run sends no variables: the pipeline runs again with those it was created with, so
    none of the run's (the UPSTREAM_* ones included) is listed as delivered."""
    return tuple(sorted({*run.variables, *run.masked_variables}))


def _rerun_existing(forge: Forge, run: Run, ref: str) -> RemotePipeline:
    """Drone's modes: run the newest (or newest successful) pipeline of the ref again instead
    of creating one. A pipeline the forge had nothing to run again in (a forge that retries
    only failed and canceled jobs leaves an all-green one as it was) is reported as reused:
    nothing new was triggered."""
    recent = forge.recent_pipelines(run.repository.path, ref, workflow=run.workflow or None)
    if run.mode == "rerun-last-successful":
        recent = [p for p in recent if p.status == Status.SUCCESS]
    if not recent:
        which = "successful pipeline" if run.mode == "rerun-last-successful" else "pipeline"
        raise _Refused(f"mode {run.mode}: no {which} on {ref} in {run.repository.path} to re-run")
    target = recent[0]
    again = forge.retry_pipeline(run.repository.path, target.id, everything=True)
    note = ""
    if again.status in FINISHED and target.status in FINISHED:
        outcome = "passed" if again.status == Status.SUCCESS else Status(again.status).label
        note = (
            f"reused pipeline #{target.id}: it had {outcome} already and the forge had no failed "
            f"or canceled job to run again, so nothing new was triggered (mode {run.mode})"
        )
    return RemotePipeline(
        id=target.id,
        status=again.status,
        web_url=target.web_url,
        undelivered=not_sent(run),
        note=note,
    )


def _keep_waiting(forge: Forge, run: Run, ref: str) -> bool:
    """`wait: true`: while a pipeline runs on the ref, come back later, up to the timeout."""
    running = [
        p
        for p in forge.recent_pipelines(run.repository.path, ref, workflow=run.workflow or None)
        if p.status in ACTIVE
    ]
    if not running:
        return False
    now = timezone.now()
    deadline = run.wait_until or now + timedelta(seconds=run.wait_timeout)
    if now >= deadline:
        raise _Refused(
            f"timed out after {run.wait_timeout} s waiting for pipeline {running[0].id} on "
            f"{ref} to finish"
        )
    with transaction.atomic():
        locked = Run.objects.select_for_update(of=("self",)).get(pk=run.pk)
        runstate.move(locked, Status.WAITING)
        locked.dispatch = Run.Dispatch.IDLE
        locked.lease_until = None
        locked.wait_until = deadline
        locked.not_before = now + timedelta(seconds=POLL_WHILE_WAITING)
        locked.error = (
            f"waiting for pipeline {running[0].id} on {ref} to finish "
            f"(until {deadline:%H:%M:%S} UTC)"
        )
        locked.save(
            update_fields=["status", "dispatch", "lease_until", "wait_until", "not_before", "error"]
        )
        _schedule_trigger(run.pk, POLL_WHILE_WAITING)
        request_mirror(run.chain_id)
    return True


def _wait_for_turn(run_id: int, at: float, *, uncertain: bool) -> None:
    """Hold the reserved slot and come back then; the run shows until when it waits."""
    when = datetime.fromtimestamp(at, tz=UTC)
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).get(pk=run_id)
        runstate.move(run, Status.WAITING)
        run.dispatch = Run.Dispatch.SENDING if uncertain else Run.Dispatch.IDLE
        run.lease_until = None
        run.reserved_at = at
        run.not_before = when
        run.error = f"waiting for rate limit until {when:%H:%M:%S} UTC"
        run.save(
            update_fields=[
                "status",
                "dispatch",
                "lease_until",
                "reserved_at",
                "not_before",
                "error",
            ]
        )
        _schedule_trigger(run.pk, at - time.time())
        request_mirror(run.chain_id)


def _default_branch(run: Run) -> str:
    repo = run.repository
    if not repo.default_branch:
        repo.update_from(forge_for(repo.forge).get_project(repo.path))
    return repo.default_branch


def _schedule_trigger(run_id: int, delay: float) -> None:
    kicks.trigger(run_id, after=delay)


def _retry_delay(exc: ForgeError, run: Run) -> float:
    return backoff.wait_for(exc, run.send_attempts)


def _park(run: Run, now: datetime) -> None:
    """A run sent this often without an outcome (time limits, dead workers, rate limits) is
    failed with the reason in words, instead of being handed to the workers forever. An
    uncertain last send stays SENDING, so a manual retry looks before resending."""
    last = f" Last: {run.error}" if run.error else ""
    why = (
        f"gave up after {run.send_attempts} attempts to send it "
        f"(BATON_MAX_RUN_ATTEMPTS={settings.BATON_MAX_RUN_ATTEMPTS}); retry it once the cause "
        f"is fixed.{last}"
    )[:2000]
    runstate.move(run, Status.FAILED, error=why, now=now)
    run.lease_until = None
    run.reserved_at = None
    run.save(update_fields=["status", "error", "finished_at", "lease_until", "reserved_at"])
    request_mirror(run.chain_id)
    settle_later(run.chain_id)
    log.warning("run %s parked after %s send attempts", run.pk, run.send_attempts)


def _trigger_failed(run: Run, exc: ForgeError, *, uncertain: bool = False) -> None:
    """Retry later, or give up in words. ``uncertain``: an earlier attempt may have reached the
    forge and no look-up has said otherwise, so the run stays "sending" (looked up, not resent)."""
    give_up = exc.permanent or (
        not exc.rate_limited and run.send_attempts > settings.BATON_MAX_FORGE_RETRIES
    )
    result = "failed" if give_up else "rate_limited" if exc.rate_limited else "retry"
    metrics.trigger(run.repository.forge.slug, result)
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).get(pk=run.pk)
        run.lease_until = None
        run.reserved_at = None
        if give_up:
            runstate.move(run, Status.FAILED, error=exc.message)
            # An uncertain last try stays SENDING so a manual retry looks before resending.
            run.save(update_fields=["status", "error", "finished_at", "lease_until", "reserved_at"])
            request_mirror(run.chain_id)
            settle_later(run.chain_id)
            log.warning("run %s failed to trigger: %s", run.pk, exc.message)
            return
        delay = _retry_delay(exc, run)
        run.dispatch = Run.Dispatch.SENDING if exc.uncertain or uncertain else Run.Dispatch.IDLE
        run.not_before = timezone.now() + timedelta(seconds=delay)
        if exc.rate_limited:
            why = f"waiting for rate limit until {run.not_before:%H:%M:%S} UTC"
            runstate.move(run, Status.WAITING, error=why)
        else:
            why = f"will retry at {run.not_before:%H:%M:%S} UTC: {exc.message}"
            runstate.move(run, Status.QUEUED, error=why)
        run.save(
            update_fields=[
                "status",
                "dispatch",
                "lease_until",
                "reserved_at",
                "not_before",
                "error",
            ]
        )
        _schedule_trigger(run.pk, delay)
        request_mirror(run.chain_id)
    log.info("run %s: %s (%s)", run.pk, run.error, exc.message)
