"""Domain verbs: one function each, called alike by the dashboard, the API, comment commands
and tasks. Each records who asked, and from where, in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from bots import kicks
from bots.engine.mirroring import request_mirror
from bots.engine.tracking import settle_later
from chains import audit, runstate
from chains.models import Chain, Quarantine, Repository, Run, RunAttempt
from chains.runstate import waits_on_others
from chains.status import ACTIVE, Status


class ActionRefused(Exception):
    """The action cannot be done; the message says why, in words."""


@dataclass(frozen=True)
class Actor:
    """Who asks, from which surface (webhook, comment, dashboard, api, admin, system)."""

    name: str
    surface: str
    user: Any = None
    remote_addr: str | None = None


BATON = Actor("baton", "system")
AUTOMATIC_RETRY = Actor("baton (automatic retry)", "system")


def _audit(action: str, actor: Actor, **kwargs: Any) -> None:
    audit.record(
        action,
        actor=actor.name,
        surface=actor.surface,
        user=actor.user,
        remote_addr=actor.remote_addr,
        **kwargs,
    )


def cancel_run(run: Run, *, actor: Actor, reason: str = "") -> bool:
    """Cancel one run and, edge by edge, what it triggered (unless an edge says `detach`).
    False when it had already finished (nothing changes)."""
    canceled = _cancel_one(run, actor=actor, reason=reason)
    children = Run.objects.filter(parent_id=run.pk, cancel_policy="propagate")
    for child in children.filter(status__in=sorted(ACTIVE)):
        cancel_run(child, actor=actor, reason=reason or f"{run.label or run.key} was canceled")
    return canceled


def _cancel_one(run: Run, *, actor: Actor, reason: str) -> bool:
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",)).select_related("repository").get(pk=run.pk)
        )
        if run.status not in ACTIVE or run.cancel_requested:
            return False
        why = reason or f"canceled by {actor.name}"
        if run.dispatch == Run.Dispatch.IDLE and not run.remote_id:
            runstate.move(run, Status.CANCELED, error=why)
            run.save(update_fields=["status", "finished_at", "error"])
            request_mirror(run.chain_id)
            settle_later(run.chain_id)
        else:
            # Sent, or being sent: the forge must cancel it (the sender checks this flag too).
            run.cancel_requested = True
            run.error = why
            run.save(update_fields=["cancel_requested", "error"])
            if run.remote_id:
                kicks.cancel_remote(run.pk)
        _audit("run.cancel", actor, run=run, target=run.repository.path, detail={"reason": reason})
    return True


def cancel_chain(
    chain: Chain, *, actor: Actor, reason: str = "", only_interruptible: bool = False
) -> int:
    """Cancel every active run of the chain; returns how many were canceled.

    ``only_interruptible`` (a newer commit superseded the chain, or the change closed): leave
    alone the runs marked `interruptible: false` and those on a `cancel: detach` edge."""
    runs = chain.runs.filter(status__in=sorted(ACTIVE))
    if only_interruptible:
        runs = runs.filter(interruptible=True).exclude(cancel_policy="detach")
    return sum(_cancel_one(run, actor=actor, reason=reason) for run in runs)


def retry_run(run: Run, *, actor: Actor, automatic: str = "") -> Run:
    """Run a failed or canceled run again, as a new attempt; earlier attempts stay on record.
    ``automatic``: the failure reason its `retry:` answers (bots/engine/failures.py)."""
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",)).select_related("repository").get(pk=run.pk)
        )
        if run.status not in (Status.FAILED, Status.CANCELED):
            raise ActionRefused(
                f"{run.label or run.key} is {run.status}; only failed or canceled runs can be "
                "retried"
            )
        _snapshot(run)
        run.attempt += 1
        run.retried_for = automatic
        run.error = ""
        run.cancel_requested = False
        runstate.restart(run, remote=bool(run.remote_id))
        if run.remote_id:
            kicks.retry_remote(run.pk)
        else:
            run.not_before = None
            run.send_attempts = 0
            kicks.trigger(run.pk)
        run.save()
        _audit(
            "run.retry",
            actor,
            run=run,
            target=run.repository.path,
            detail={"attempt": run.attempt, **({"automatic": automatic} if automatic else {})},
        )
        request_mirror(run.chain_id)
    return run


def _snapshot(run: Run) -> None:
    RunAttempt.of(run).save()


def descendants(run: Run, family: list[Run]) -> list[Run]:
    children = [r for r in family if r.parent_id == run.pk]
    return children + [d for child in children for d in descendants(child, family)]


def retry_subtree(run: Run, *, actor: Actor) -> int:
    """Run ``run`` again as a fresh pipeline, and everything it set off after it; returns how
    many runs start over. Refused while any of them is still running."""
    with transaction.atomic():
        family = list(Run.objects.select_for_update(of=("self",)).filter(chain_id=run.chain_id))
        root = next(r for r in family if r.pk == run.pk)
        subtree = [root, *descendants(root, family)]
        busy = [r for r in subtree if r.status in ACTIVE]
        if busy:
            raise ActionRefused(
                f"{busy[0].label or busy[0].key} is still {busy[0].status}; cancel it first"
            )
        for node in subtree:
            _snapshot(node)
            node.attempt += 1
            runstate.restart(node, waits=waits_on_others(node))
            node.remote_id = node.web_url = node.error = ""
            node.dispatch = Run.Dispatch.IDLE
            node.send_attempts = 0
            node.cancel_requested = False
            node.triggered_at = None
            node.not_before = node.wait_until = None
            node.reserved_at = None
            node.reused_from = None
            node.mirrored_status = ""
            node.save()
        queued = [n.pk for n in subtree if n.status == Status.QUEUED]
        kicks.trigger_all(queued)
        settle_later(run.chain_id)
        _audit(
            "run.retry_subtree",
            actor,
            run=root,
            target=root.repository.path,
            detail={"runs": len(subtree)},
        )
        request_mirror(run.chain_id)
    return len(subtree)


def retry_failed(chain: Chain, *, actor: Actor) -> int:
    """Retry every failed run of the chain; returns how many."""
    failed = list(chain.runs.filter(status=Status.FAILED))
    if not failed:
        raise ActionRefused("no run of this chain has failed")
    for run in failed:
        retry_run(run, actor=actor)
    return len(failed)


def rerun_chain(chain: Chain, *, actor: Actor) -> None:
    """Plan and run the chain's change again on its latest commit (a new chain supersedes)."""
    if chain.change_number is None:
        raise ActionRefused("only chains started by a change can be re-run")
    _audit(
        "chain.rerun", actor, chain=chain, target=f"{chain.repository.path}!{chain.change_number}"
    )
    # A person on the dashboard or the API is a Baton user: their grants count (as well as the
    # author's). From a comment (or the system) the forge account does, through Identity.
    user_id = actor.user.pk if actor.surface in ("dashboard", "api") and actor.user else None
    kicks.rerun_chain(chain.pk, actor.name, user_id)


QUARANTINE_MAX_DAYS = 90


def quarantine_project(
    repository: Repository, *, reason: str, days: int, actor: Actor
) -> Quarantine:
    """Mark a target project quarantined for ``days`` (1 to 90): the failures of its runs planned
    until then are soft failures, shown as ``quarantined: <reason>``."""
    words = " ".join(str(reason).split())[:200]
    if not words:
        raise ActionRefused("Say why the project is quarantined.")
    if not 1 <= days <= QUARANTINE_MAX_DAYS:
        raise ActionRefused(f"A quarantine lasts 1 to {QUARANTINE_MAX_DAYS} days.")
    found = Quarantine.objects.create(
        repository=repository,
        reason=words,
        expires_at=timezone.now() + timedelta(days=days),
        created_by=actor.name,
    )
    _audit(
        "quarantine.add",
        actor,
        target=repository.path,
        detail={"reason": words, "expires_at": found.expires_at.isoformat()},
    )
    return found


def lift_quarantine(repository: Repository, *, actor: Actor) -> int:
    """End the project's quarantines now; returns how many were in force."""
    now = timezone.now()
    lifted = Quarantine.objects.filter(repository=repository, expires_at__gt=now).update(
        expires_at=now
    )
    if lifted:
        _audit("quarantine.lift", actor, target=repository.path, detail={"lifted": lifted})
    return lifted
