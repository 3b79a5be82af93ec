"""Polling when webhooks are lost: which open runs are due, one conditional list call per
repository standing for all of its open runs, and hook silence (a forge whose webhooks have gone
quiet while it has open runs, e.g. a hook GitLab disabled after failures).

- A run is due when Baton has not heard of it for ``BATON_POLL_AFTER`` seconds, or for
  ``BATON_POLL_AFTER_HOOKED`` when its webhooks do arrive — unless its forge is *silent*: then
  ``BATON_POLL_AFTER`` holds for every open run of that forge.
- A run heard to start is checked once when it should have ended (bots/engine/overdue.py); if
  it has not, its repository is polled then, due or not (``poll_if_overdue``).
- A forge is silent when it has runs the forge has had for more than ``BATON_HOOK_SILENCE``
  seconds that have not finished, and no webhook delivery (of any event) has reached Baton for
  that long. ``Forge.hooks_seen_at`` records the newest delivery, written by the sweeper from
  the stored deliveries (the webhook view does no extra write).
- A repository with a due run is polled as a whole: one list call (``changed_pipelines``: GitLab
  pipelines updated since the oldest news of its open runs; GitHub runs created since the oldest
  was sent, asked with an ETag) answers for all of them. Runs are matched by (repository, remote
  id). Only when the answer was cut short (more pages) are the runs missing from it read one by
  one. Runs whose pipeline Baton has not identified yet are looked up one by one
  (``tracking.poll``), as before.

docs/operations.md ("Webhooks that go quiet") says the same for operators.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from bots.engine.mirroring import request_mirror
from bots.engine.tracking import NOT_FOUND, apply_status, gone
from bots.forges.base import ForgeError, RemotePipeline
from bots.forges.registry import forge_for
from chains.models import Delivery, Forge, Repository, Run
from chains.status import ACTIVE

log = logging.getLogger(__name__)

MAX_POLLED = 500  # open runs of one repository one poll stands for (the rest: the next poll)
MAX_DUE = 5000  # due runs the sweeper reads at once


# --- hook silence ------------------------------------------------------------------------------


def note_hooks(now: datetime | None = None) -> None:
    """Move each forge's ``hooks_seen_at`` to its newest stored delivery. Reads the deliveries
    of the last few sweeps only (an index range on ``received_at``), so its cost does not grow
    with the table."""
    now = now or timezone.now()
    window = max(settings.BATON_HOOK_SILENCE, 6 * settings.BATON_SWEEP_INTERVAL)
    latest = (
        Delivery.objects.filter(received_at__gte=now - timedelta(seconds=window))
        .values_list("forge_id")
        .annotate(at=Max("received_at"))
        .order_by()
    )
    for forge_id, at in latest:
        Forge.objects.filter(pk=forge_id).filter(
            Q(hooks_seen_at__isnull=True) | Q(hooks_seen_at__lt=at)
        ).update(hooks_seen_at=at)


def _open_runs() -> QuerySet[Run]:
    return Run.objects.filter(status__in=sorted(ACTIVE), dispatch=Run.Dispatch.SENT)


def silent(now: datetime | None = None) -> Q:
    """The condition on a Forge row that its webhooks have gone quiet while it has open runs."""
    now = now or timezone.now()
    quiet = now - timedelta(seconds=settings.BATON_HOOK_SILENCE)
    expecting = _open_runs().filter(repository__forge=OuterRef("pk"), triggered_at__lt=quiet)
    return (Q(hooks_seen_at__isnull=True) | Q(hooks_seen_at__lt=quiet)) & Q(Exists(expecting))


def silent_forges(now: datetime | None = None) -> QuerySet[Forge]:
    """The forges whose webhooks have gone quiet while they have open runs (see above)."""
    return Forge.objects.filter(silent(now))


@dataclass(frozen=True)
class Silence:
    forge: Forge
    since: datetime  # the last delivery, or (none ever) the oldest open run's trigger

    def seconds(self, now: datetime | None = None) -> int:
        return max(0, int(((now or timezone.now()) - self.since).total_seconds()))

    def message(self, now: datetime | None = None) -> str:
        """ "no webhooks from GitLab for 7 minutes" (in seconds under a minute)."""
        seconds = self.seconds(now)
        n, unit = (seconds, "second") if seconds < 60 else (seconds // 60, "minute")
        return f"no webhooks from {self.forge.name} for {n} {unit}{'s' if n != 1 else ''}"


def silence_of(forge: Forge, now: datetime | None = None) -> Silence | None:
    """The forge's hook silence, when it is silent."""
    now = now or timezone.now()
    if not silent_forges(now).filter(pk=forge.pk).exists():
        return None
    seen = Forge.objects.filter(pk=forge.pk).values_list("hooks_seen_at", flat=True).first()
    if seen is None:
        seen = _open_runs().filter(repository__forge=forge).aggregate(t=Min("triggered_at"))["t"]
    return Silence(forge, seen or now)


# --- what is due -------------------------------------------------------------------------------


def _due_filter(now: datetime, silent: list[int]) -> Q:
    quiet = now - timedelta(seconds=settings.BATON_POLL_AFTER)
    quiet_hooked = now - timedelta(seconds=settings.BATON_POLL_AFTER_HOOKED)
    due = (
        Q(last_seen_at__isnull=True)
        | Q(hooked=False, last_seen_at__lt=quiet)
        | Q(hooked=True, last_seen_at__lt=quiet_hooked)
    )
    if silent:
        due |= Q(repository__forge_id__in=silent, last_seen_at__lt=quiet)
    return due


def due_filter(now: datetime | None = None) -> Q:
    """The condition on an open Run row that it is due for polling."""
    now = now or timezone.now()
    return _due_filter(now, list(silent_forges(now).values_list("pk", flat=True)))


def due(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """(repositories to poll, runs to look for one by one): the open runs quiet long enough,
    grouped by repository when the forge's id of their pipeline is known."""
    rows = list(
        _open_runs()
        .filter(due_filter(now))
        .values_list("pk", "repository_id", "remote_id")[:MAX_DUE]
    )
    repositories = sorted({repository for _, repository, remote in rows if remote})
    lookups = [pk for pk, _, remote in rows if not remote]
    return repositories, lookups


# --- one repository, one call ------------------------------------------------------------------


def poll_if_overdue(run_id: int, attempt: int, due_at: float) -> int:
    """The check bots/engine/overdue.py asks for: poll the run's repository when the run (this
    attempt) has not ended and nothing was heard of it since ``due_at`` (a timestamp; a poll for
    another run of the repository counts). Returns the number of forge calls made."""
    if time.time() < due_at:
        return 0  # not due yet (a task run early: eager mode, a clock moved)
    row = (
        _open_runs()
        .filter(pk=run_id, attempt=attempt)
        .exclude(remote_id="")
        .values_list("repository_id", "last_seen_at")
        .first()
    )
    if row is None:
        return 0  # ended (its webhook came), retried or sent again meanwhile
    repository_id, seen = row
    if seen is not None and seen.timestamp() >= due_at:
        return 0
    return poll_repository(repository_id, overdue=True)


def poll_repository(repository_id: int, *, overdue: bool = False) -> int:
    """Ask the forge once where all the repository's open runs stand, and apply what changed.
    Returns the number of forge calls made. Raises ForgeError when the forge cannot be asked
    (the runs stay due: the next sweep tries again). ``overdue``: asked for a run that should
    have ended (``poll_if_overdue``), whether or not a run is due."""
    started = timezone.now()
    repository = Repository.objects.select_related("forge").filter(pk=repository_id).first()
    if repository is None:
        return 0
    silent = list(
        silent_forges(started).filter(pk=repository.forge_id).values_list("pk", flat=True)
    )
    open_runs = _open_runs().filter(repository=repository).exclude(remote_id="")
    if not overdue and not open_runs.filter(_due_filter(started, list(silent))).exists():
        return 0  # another poll got there first
    # The longest unheard first: past MAX_POLLED, the rest are covered by the next poll.
    order = (F("last_seen_at").asc(nulls_first=True), "pk")
    runs = list(open_runs.order_by(*order)[:MAX_POLLED])
    skew = timedelta(seconds=settings.BATON_MARKER_CLOCK_SKEW)
    heard = min(r.last_seen_at or r.triggered_at or r.created_at for r in runs)
    sent = min(r.sent_at or r.triggered_at or r.created_at for r in runs)
    forge = forge_for(repository.forge)
    listing = forge.changed_pipelines(
        repository.path, updated_after=heard - skew, created_after=sent - skew
    )
    calls = 1
    news: dict[str, RemotePipeline] = {p.id: p for p in listing.pipelines}
    if not listing.complete:
        for run in runs:
            if run.remote_id not in news:
                calls += 1
                try:
                    news[run.remote_id] = forge.get_pipeline(repository.path, run.remote_id)
                except ForgeError as exc:
                    if exc.status_code != NOT_FOUND:
                        raise
                    gone(run.pk, run.remote_id)  # one deleted pipeline stops no other run's poll
    for run in runs:
        remote = news.get(run.remote_id)
        if remote is not None and remote.status != run.status:
            _apply(run.pk, remote)
    # Everything up to the start of this poll is known now: the next one asks from there.
    Run.objects.filter(pk__in=[r.pk for r in runs]).filter(
        Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=started)
    ).update(last_seen_at=started)
    return calls


def _apply(run_id: int, remote: RemotePipeline) -> None:
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).filter(pk=run_id).first()
        if run is None or run.status not in ACTIVE or run.remote_id != remote.id:
            return  # finished, or re-sent meanwhile: the news is about another pipeline
        if apply_status(
            run, remote.status, started_at=remote.started_at, finished_at=remote.finished_at
        ):
            run.web_url = remote.web_url or run.web_url
            run.save()
            request_mirror(run.chain_id)
