"""From a chain's state to the upstream change: commit statuses and one summary comment.

A run in a project the change's readers may not know (chains/redaction.py) gets a neutral status
context, ``baton/private-<n>`` (n counts such runs of the chain in the order they were created),
the description "a private project: <status>" and no link; every other description has the names
of those projects replaced.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from bots import kicks, summary, throttle
from bots.engine.sending import side_by_side
from bots.forges.base import Budget, Forge
from bots.forges.registry import forge_for
from chains import failures, quarantine, runstate
from chains.models import Chain, Run
from chains.redaction import PRIVATE, hidden_runs, private_names, scrub
from chains.runstate import chain_status, soft_failed
from chains.safe_url import safe_url
from chains.status import Status, upstream_view
from notify import hooks as notify_hooks

MIRROR_AFTER = 0.2  # seconds: the asks of a moment become one mirror


def request_mirror(chain_id: int, *, after: float = MIRROR_AFTER, settle: bool = True) -> None:
    """The chain's runs changed: write the chain's own status and finished_at now, in the
    caller's transaction (chains/runstate.py), and ask for the upstream change to be brought up
    to date after commit; many asks become one mirror. ``settle=False``: the change cannot
    move the chain's own status (``runstate.keeps_chain_as_is``), so its row is not locked."""
    if settle:
        runstate.settle_chain(chain_id)
    asked = Chain.objects.filter(pk=chain_id, mirror_requested_at__isnull=True).update(
        mirror_requested_at=timezone.now()
    )
    if asked:
        kicks.mirror(chain_id, after=after)


def mirror_new(chain_id: int, *, after: float = MIRROR_AFTER) -> None:
    """``request_mirror`` for a chain the caller's transaction inserts with its status from
    ``runstate.new_chain_status`` and ``mirror_requested_at`` set: only the mirror to ask for
    after commit."""
    kicks.mirror(chain_id, after=after)


# A run planned this recently and not yet sent holds the chain's mirror back (``sending``); an
# older one (a forge that keeps refusing it, a retry) no longer does.
SENDS_FIRST_FOR = timedelta(seconds=30)


def sending(runs: list[Run], now: datetime, *, paced: bool) -> bool:
    """Whether a run of the chain is on its way to the forge: planned moments ago and queued, or,
    where writes are paced (``paced``), waiting for its turn at the forge's budget. Not a run
    that waits for other runs: that may take as long as their pipelines."""
    recent = now - SENDS_FIRST_FOR
    return any(
        run.created_at is not None
        and run.created_at > recent
        and (
            run.status == Status.QUEUED
            or (paced and run.status == Status.WAITING and run.not_before is not None)
        )
        for run in runs
    )


def mirror(chain_id: int) -> bool:
    """Post commit statuses and the summary comment; False when another worker is mirroring."""
    now = timezone.now()
    claimed = Chain.objects.filter(
        Q(mirror_lease_until__isnull=True) | Q(mirror_lease_until__lt=now), pk=chain_id
    ).update(mirror_lease_until=now + timedelta(seconds=300), mirror_requested_at=None)
    if not claimed:
        return not Chain.objects.filter(pk=chain_id).exists()
    notify_hooks.chain_settled(chain_id)  # the chain's state as mirrored: notify/ tells channels
    try:
        _mirror(Chain.objects.select_related("forge", "repository").get(pk=chain_id))
    finally:
        Chain.objects.filter(pk=chain_id).update(mirror_lease_until=None)
    return True


def _mirror(chain: Chain) -> None:
    forge = forge_for(chain.forge)
    project = chain.repository.path
    writes = forge.budgets("write", project)
    runs = list(chain.runs.select_related("repository").order_by("depth", "pk"))
    paced = any(b.spacing for b in writes)
    if sending(runs, timezone.now(), paced=paced):
        # Let the triggers go first (a fan-out's creates share the worker and, where writes
        # are paced, the write budget with these statuses): mirror once they are out.
        request_mirror(chain.pk, after=5.0 if paced else 1.0)
        return
    views = {run.pk: view_of(run) for run in runs}
    names = private_names(chain.repository, runs)
    private = private_contexts(chain, runs)
    contexts = status_contexts(runs)
    posts: list[tuple[Run, Callable[[], None]]] = []
    for run in runs:
        view = views[run.pk]
        if forge.already_shows(_shown(forge, run.mirrored_status), forge.commit_state(view)):
            continue  # the forge already shows this state under baton/<key> (or cannot go back)
        if run.pk in private:
            context, description, link = private[run.pk], f"{PRIVATE}: {_word(run, view)}", ""
        else:
            context, description = contexts[run.pk], scrub(_describe(run, view), names)[:255]
            link = run.web_url
        post = functools.partial(
            forge.set_commit_status,
            project,
            chain.head_sha,
            context=context,
            status=view,
            description=description,
            target_url=safe_url(link),  # never a javascript: link on the forge
        )
        posts.append((run, post))
    _post_statuses(posts, views, writes)
    # The chain's own row was settled when its runs changed (request_mirror); the forge is told
    # the same fold of the same runs.
    aggregate = chain_status(chain.error, views.values())
    if not forge.already_shows(_shown(forge, chain.mirrored_status), forge.commit_state(aggregate)):
        throttle.wait(writes)
        forge.set_commit_status(
            project,
            chain.head_sha,
            context="baton",
            status=aggregate,
            description=scrub(chain.error or _progress(runs), names)[:255],
            target_url=f"{settings.BATON_BASE_URL}/chains/{chain.pk}/",
        )
        Chain.objects.filter(pk=chain.pk).update(mirrored_status=aggregate)
    if chain.change_number is None or chain.superseded_by_id is not None:
        return
    body = summary.render(chain, runs)
    digest = hashlib.sha256(body.encode()).hexdigest()
    if digest == chain.summary_digest:
        return
    throttle.wait(writes)
    comment_id = forge.upsert_comment(
        project, chain.change_number, body, chain.summary_comment_id or None
    )
    Chain.objects.filter(pk=chain.pk).update(summary_comment_id=comment_id, summary_digest=digest)
    # Later chains of the same change keep editing this comment.
    Chain.objects.filter(
        repository=chain.repository, change_number=chain.change_number, summary_comment_id=""
    ).update(summary_comment_id=comment_id)


# Statuses posted side by side at most this many at a time, each batch's runs then marked in one
# UPDATE per status: where writes are not budgeted (GitLab), a 100-run chain's statuses took 100
# round trips one after the other and 100 UPDATEs.
STATUS_BATCH = 32


def _post_statuses(
    posts: list[tuple[Run, Callable[[], None]]], views: dict[int, Status], writes: list[Budget]
) -> None:
    """Post the runs' statuses and note what the forge shows now. Under a write budget one at a
    time, each after its reservation; without one side by side (the first error is raised once
    the others of its batch are noted)."""
    if writes:
        for run, post in posts:
            throttle.wait(writes)
            post()
            Run.objects.filter(pk=run.pk).update(mirrored_status=views[run.pk])
        return
    for start in range(0, len(posts), STATUS_BATCH):
        batch = posts[start : start + STATUS_BATCH]
        outcomes = side_by_side([post for _, post in batch])
        shown: dict[Status, list[int]] = defaultdict(list)
        for (run, _), outcome in zip(batch, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                shown[views[run.pk]].append(run.pk)
        for view, pks in shown.items():
            Run.objects.filter(pk__in=pks).update(mirrored_status=view)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


def private_contexts(chain: Chain, runs: list[Run]) -> dict[int, str]:
    """Status contexts for the runs whose project the change's readers may not know, by run id."""
    hidden = sorted(hidden_runs(chain.repository, runs))
    return {pk: f"baton/private-{n}" for n, pk in enumerate(hidden, start=1)}


MAX_CONTEXT = 255  # GitLab's limit for a status name; GitHub's contexts are no longer


def status_contexts(runs: list[Run]) -> dict[int, str]:
    """The status context of each run, by run id: ``baton/<key>`` for what the change set off,
    ``baton/<parent-key>/<key>`` (and so on down) for what a triggered project's own file set
    off, so nested runs with the same key never overwrite each other's status. Keys hold no
    "/" (chains/config.py), so no two runs share one. (Private runs get theirs from
    ``private_contexts``; a run under a private run is private too.)"""
    by_pk = {run.pk: run for run in runs}
    contexts: dict[int, str] = {}
    for run in runs:
        keys: list[str] = []
        node: Run | None = run
        while node is not None and len(keys) <= len(runs):
            keys.append(node.key)
            node = by_pk.get(node.parent_id) if node.parent_id else None
        name = "baton/" + "/".join(reversed(keys))
        if len(name) > MAX_CONTEXT:
            digest = hashlib.sha256(name.encode()).hexdigest()[:12]
            name = f"baton/{run.key}-{digest}"
        contexts[run.pk] = name
    return contexts


def _word(run: Run, view: Status) -> str:
    return quarantine.word(run) if soft_failed(run) else view.label


def _progress(runs: list[Run]) -> str:
    words = f"{sum(r.is_finished for r in runs)}/{len(runs)} finished"
    soft = quarantine.counted(runs)
    return f"{words}, {soft}" if soft else words


def _shown(forge: Forge, mirrored: str) -> str | None:
    """The forge's own state for what was last mirrored (None: nothing yet, or forgotten)."""
    return forge.commit_state(Status(mirrored)) if mirrored in Status.values else None


def _describe(run: Run, view: Status) -> str:
    if soft_failed(run):
        why = f": {run.error}" if run.error else ""
        return f"{run.repository.path}: {_word(run, view)}{why}"[:255]
    if run.error:
        return run.error[:255]
    if why := failures.describe(run):
        return why  # which jobs failed, and why (at most GitHub's 140 characters)
    return f"{run.repository.path}: {view.label}"


def view_of(run: Run) -> Status:
    if runstate.retry_pending(run):  # its `retry:` may still retry it: not red yet
        return Status.RUNNING
    return upstream_view(
        run.status,
        strategy=run.strategy,
        sent=run.dispatch == Run.Dispatch.SENT,
        soft_fail=run.soft_fail,
    )
