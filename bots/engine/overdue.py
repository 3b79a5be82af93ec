"""When a run should have ended: a lost final webhook is noticed within seconds, not minutes.

A run whose webhooks arrive is polled only after ``BATON_POLL_AFTER_HOOKED`` without news
(bots/engine/polling.py), so a run whose *last* webhook was lost would show "running" for up to
that long. When a webhook tells Baton that a run started, Baton knows how long the target's
pipelines have taken: the longest but one of its last ``HISTORY`` successful runs
(chains/history.py, the ETA's durations; one odd run, say one that sat an hour in a runner's
queue, does not count). Baton asks for one check at that run's start plus that duration plus
``BATON_OVERDUE_GRACE`` seconds; if the run has not ended by then and nothing was heard of it
since it was due, its repository is polled at once (one list call, standing for all of its open
runs, as any poll). A run that ends in time costs no forge call, only the check's task; one that
outlasts nearly all of its target's recent runs costs one list call more.

No check is asked for while the target has fewer than ``MIN_HISTORY`` successful runs, nor when
its runs take longer than ``BATON_POLL_AFTER_HOOKED`` (the ordinary poll comes first), nor for
news that came from a poll (a forge whose webhooks are lost is polled anyway).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from bots import caching, kicks
from chains import history
from chains.models import Run

HISTORY = 10  # recent successful runs of the target that say how long its runs take
MIN_HISTORY = 3  # fewer: no check (one or two runs say little)
REMEMBERED_SECONDS = 30.0  # that duration, per repository, in each process's memory


def usual_longest(repository_id: int) -> float | None:
    """Seconds the longest but one of the target's last ``HISTORY`` successful runs took, or
    None when it has fewer than ``MIN_HISTORY``."""

    def compute() -> float | None:
        seconds = sorted(history.durations(repository_id, limit=HISTORY))
        return seconds[-2] if len(seconds) >= MIN_HISTORY else None

    return caching.remembered(
        caching.key("usual-longest-run", repository_id),
        REMEMBERED_SECONDS,
        compute,
        alias="local",
    )


def watch(run: Run, now: datetime) -> None:
    """Ask for a check of ``run`` (just heard to have started, from a webhook) at the moment it
    should have ended, after its transaction commits."""
    longest = usual_longest(run.repository_id)
    if longest is None or longest + settings.BATON_OVERDUE_GRACE >= (
        settings.BATON_POLL_AFTER_HOOKED
    ):
        return
    # A first attempt counts from the forge's start; a retry from now (a forge may date a
    # retried pipeline from its first creation). Never later than a whole run from now.
    since_start = 0.0
    if run.attempt == 1 and run.started_at is not None:
        since_start = min(max((now - run.started_at).total_seconds(), 0.0), longest)
    due_in = longest - since_start
    kicks.check_end(
        run.pk, run.attempt, now.timestamp() + due_in, after=due_in + settings.BATON_OVERDUE_GRACE
    )
