"""Many runs sent at once (a fan-out): the same promises as ``triggering.trigger``, one run at a
time, at a fraction of the cost per run.

A chunk of runs is claimed in one transaction (each run's claim, nonce and lease as
``trigger`` writes them), reserved against the rate budgets in one transaction, sent side by
side (``sending.side_by_side``: HTTP only, no database), and what
the forge accepted is recorded in one transaction (``tracking.record_many``: one chain settle
and one mirror request per chunk instead of one per run). A run that needs more than a plain
send (it waits for others, a rate limit longer than ``INLINE_WAIT``, a forge that demands
spacing between writes, an earlier send whose outcome is unknown, ``wait:``, a re-run mode, a
`self` child pipeline, a target whose default branch Baton does not know yet) goes the
one-at-a-time way. A chain of one plain run is sent the same way by its planning task
(``claim_alone``, ``send_now``).

Nothing is lost and nothing is sent twice on a crash: a chunk's runs are claimed (``sending``,
with a lease) only just before they are sent, exactly as ``trigger`` claims one run, so a worker
that dies mid-chunk leaves runs the sweeper hands to ``trigger`` once their lease runs out, which
looks for the pipeline before sending again; runs of later chunks are still queued and idle, and
the sweeper sends them.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bots import kicks, throttle
from bots.engine.sending import side_by_side
from bots.engine.tracking import record_many
from bots.engine.triggering import (
    INLINE_WAIT,
    _retry_delay,
    _trigger_failed,
    _wait_for_turn,
    run_variables,
)
from bots.forges.base import Budget, Forge, ForgeError, RemotePipeline
from bots.forges.registry import forge_for
from chains.models import Run, new_run_nonce
from chains.runstate import waits_on_others
from chains.status import NOT_YET_SENT, Status

log = logging.getLogger(__name__)

SEND_THREADS = 16  # runs per chunk: claimed together just before they are sent side by side


def trigger_many(run_ids: list[int]) -> None:
    """Send these runs, ``SEND_THREADS`` at a time; each exactly once (see the module)."""
    ids = sorted(set(run_ids))
    for start in range(0, len(ids), SEND_THREADS):
        _send_chunk(ids[start : start + SEND_THREADS])


def _plain(run: Run, forge: Forge) -> bool:
    """Whether a run is a plain send this path may make (else ``trigger`` makes it)."""
    ref = run.ref or run.repository.default_branch
    return bool(
        ref
        and run.mode == "new"
        and not run.wait_timeout
        and run.not_before is None
        and run.reserved_at is None
        and run.send_attempts < settings.BATON_MAX_RUN_ATTEMPTS
        and not waits_on_others(run)
        and not run.is_child  # a `self` run may be the change's own pipeline: ``trigger``
        and not any(b.spacing for b in forge.budgets("create", run.repository.path, ref))
    )


def _send_chunk(ids: list[int]) -> None:
    now = timezone.now()
    alone: list[int] = []
    claimed: list[Run] = []
    forges: dict[int, Forge] = {}
    with transaction.atomic():
        runs = (
            Run.objects.select_for_update(of=("self",))
            .select_related("repository__forge")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        for run in runs:
            if run.status not in NOT_YET_SENT or run.dispatch != Run.Dispatch.IDLE:
                continue  # sent, being sent, or no longer to be sent: ``trigger`` would skip it
            record = run.repository.forge
            forge = forges.get(record.pk) or forges.setdefault(record.pk, forge_for(record))
            if not _plain(run, forge):
                alone.append(run.pk)
                continue
            claim(run, now)
            claimed.append(run)
        Run.objects.save_each(claimed, CLAIMED)
        kicks.trigger_each(alone)
    send_claimed(claimed, forges)


# What a claim changes on a run (``claim``).
CLAIMED = ("dispatch", "lease_until", "send_attempts", "nonce", "sent_at")


def claim(run: Run, now: datetime) -> None:
    """Claim the run for one send, as ``trigger`` does (the caller saves its ``CLAIMED``)."""
    run.nonce = new_run_nonce()  # a new send: a new secret marker
    run.sent_at = now
    run.dispatch = Run.Dispatch.SENDING
    run.lease_until = now + timedelta(seconds=settings.BATON_TRIGGER_LEASE)
    run.send_attempts += 1


def claim_alone(runs: list[Run]) -> Run | None:
    """A change that plans exactly one run to send now, a plain one (see ``_plain``): it is
    claimed here, so that it is written claimed with the chain, and sent by ``send_now`` right
    after the commit, in the same task (no queue trip, no claim transaction). If the worker dies
    in between, the claim runs out and the sweeper hands the run to ``trigger``, which looks for
    the pipeline before sending. Any other plan: None, and nothing is claimed."""
    queued = [run for run in runs if run.status in NOT_YET_SENT]
    if len(queued) != 1 or queued[0].status != Status.QUEUED:
        return None
    run = queued[0]
    if run.repository.pk is None or not _plain(run, forge_for(run.repository.forge)):
        return None
    claim(run, timezone.now())
    return run


def send_now(run: Run) -> None:
    """Send a run ``claim_alone`` claimed, once its chain is committed. Anything but a forge
    error (which ``_trigger_failed`` handles) leaves the claim to run out: the sweeper's
    ``trigger`` looks before it sends again."""
    try:
        send_claimed([run], {run.repository.forge_id: forge_for(run.repository.forge)})
    except SoftTimeLimitExceeded:
        log.warning("run %s: the delivery's time limit cut its send short", run.pk)
        Run.objects.filter(pk=run.pk, send_attempts=run.send_attempts).update(
            error="sending took longer than the time limit; its pipeline is looked for before "
            "it is sent again"
        )
    except Exception:
        log.exception("run %s: sending failed; the sweeper takes it up", run.pk)


def send_claimed(claimed: list[Run], forges: dict[int, Forge]) -> None:
    """Reserve, send side by side and record runs claimed for one send each."""
    if not claimed:
        return

    def budgets(run: Run) -> list[Budget]:
        ref = run.ref or run.repository.default_branch
        return forges[run.repository.forge_id].budgets("create", run.repository.path, ref)

    times = throttle.reserve_many([budgets(run) for run in claimed])
    ready: list[Run] = []
    latest = time.time()
    for run, at in zip(claimed, times, strict=True):
        if at - time.time() > INLINE_WAIT:
            _wait_for_turn(run.pk, at, uncertain=False)
        else:
            ready.append(run)
            latest = max(latest, at)
    time.sleep(max(0.0, latest - time.time()))
    if not ready:
        return

    def send(run: Run) -> RemotePipeline | ForgeError:
        ref = run.ref or run.repository.default_branch
        try:
            return forges[run.repository.forge_id].create_pipeline(
                run.repository.path,
                ref,
                run_variables(run),
                workflow=run.workflow or None,
                deploy=run.deploy_environment or None,
            )
        except ForgeError as exc:  # anything else propagates from a single send, as in trigger
            return exc

    results = side_by_side([functools.partial(send, run) for run in ready])
    outcomes = list(zip(ready, results, strict=True))
    sent: list[tuple[int, RemotePipeline, str]] = []
    for run, outcome in outcomes:
        if isinstance(outcome, RemotePipeline):
            sent.append((run.pk, outcome, run.ref or run.repository.default_branch))
        elif isinstance(outcome, ForgeError):
            if outcome.rate_limited:
                throttle.block(budgets(run), _retry_delay(outcome, run))
            _trigger_failed(run, outcome, uncertain=False)
        else:
            # Unknown whether it reached the forge: the claim runs out and ``trigger`` looks
            # before sending again.
            log.error("run %s: sending failed: %r", run.pk, outcome)
    if sent:
        record_many(sent)
