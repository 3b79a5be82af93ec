"""Why a run failed: once a downstream pipeline is found failed (webhook or poll), a worker asks
its forge for the failed jobs — one request (``Forge.failed_jobs``) — and keeps them on the run
(chains/failures.py bounds them), then asks for the upstream change to be mirrored again so its
``baton/<key>`` status and summary comment say why.

Once the reasons are kept, the task hands them to bots/engine/flaky.py: when the target's
`retry:` names one of them, the run is retried there, as a new attempt, while its row is locked.

It runs in its own task after the run's end is committed: tracking is not slowed by it, and a
forge error here never touches the run's status (the task retries transient errors, then gives up
and the run simply shows no reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from bots import kicks
from bots.engine.mirroring import request_mirror
from bots.forges.registry import forge_for
from chains import failures
from chains.models import Run
from chains.status import Status

log = logging.getLogger(__name__)


def fetch_later(run: Run) -> None:
    """The run has just finished failed: after commit, ask its forge why."""
    if run.status == Status.FAILED and run.remote_id and run.pk is not None:
        kicks.failed_jobs(run.pk, run.remote_id, run.attempt)


def _explains(run: Run | None, remote_id: str, attempt: int) -> bool:
    """Whether the run is still the failed attempt the jobs would explain."""
    return (
        run is not None
        and run.status == Status.FAILED
        and run.remote_id == remote_id
        and run.attempt == attempt
    )


def fetch(
    run_id: int,
    remote_id: str,
    attempt: int,
    then: Callable[[Run, list[str]], None] | None = None,
) -> bool:
    """Read and keep the failed jobs of the run's pipeline; False when the run moved on (retried,
    re-sent) or is gone. Raises ForgeError when the forge cannot answer. ``then(run, reasons)``
    runs once new reasons are kept, with the run still locked (bots/engine/flaky.py)."""
    run = Run.objects.select_related("repository__forge").filter(pk=run_id).first()
    if run is None or not _explains(run, remote_id, attempt):
        return False
    forge = forge_for(run.repository.forge)
    jobs = forge.failed_jobs(run.repository.path, remote_id, limit=failures.MAX_JOBS)
    kept = failures.stored(list(jobs), attempt=attempt, pipeline=remote_id)
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("chain", "repository__forge")
            .filter(pk=run_id)
            .first()
        )
        if run is None or not _explains(run, remote_id, attempt):
            return False
        if run.failed_jobs == kept:
            return True  # a repeat (the task ran twice): nothing new to say
        run.failed_jobs = kept
        fields = ["failed_jobs"]
        if kept["jobs"]:
            # The baton/<key> description now says why: post it again (a finished status may
            # be followed by the same state on both forges).
            run.mirrored_status = ""
            fields.append("mirrored_status")
        run.save(update_fields=fields)
        request_mirror(run.chain_id)
        if then is not None:
            then(run, [job["reason"] for job in kept["jobs"]])
        if run.status == Status.FAILED:
            kicks.release(run.chain_id)  # not retried: what waited for it may be skipped now
    log.info("run %s: %d failed job(s) read", run_id, len(kept["jobs"]))
    return True


def unexplained(
    run_id: int,
    remote_id: str,
    attempt: int,
    then: Callable[[Run, list[str]], None] | None = None,
) -> None:
    """The forge would not say why: keep that this attempt's reasons were asked for (none known),
    so a `retry:` waiting on them decides (only `always` covers an unknown reason) and, if it does
    not retry, the run ends failed for good."""
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("chain", "repository__forge")
            .filter(pk=run_id)
            .first()
        )
        if run is None or not _explains(run, remote_id, attempt):
            return
        if isinstance(run.failed_jobs, dict) and run.failed_jobs.get("attempt") == attempt:
            return  # already read
        run.failed_jobs = failures.stored([], attempt=attempt, pipeline=remote_id)
        run.save(update_fields=["failed_jobs"])
        request_mirror(run.chain_id)
        if then is not None:
            then(run, [])
        if run.status == Status.FAILED:
            kicks.release(run.chain_id)
