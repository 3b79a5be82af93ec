"""The engine: from a change to a chain, from a chain to triggered runs, from forge news to
statuses, and from statuses back onto the upstream change.

Forge-neutral: it speaks to forges only through the Forge protocol (bots/forges/base.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import re
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bots import summary, throttle
from bots.events import ChangeAction, ChangeEvent, PipelineEvent
from bots.forges.base import ForgeError, RemotePipeline
from bots.forges.registry import forge_for
from chains import audit
from chains.config import BatonConfig, ConfigError, parse_config
from chains.models import Chain, Delivery, Forge, Repository, Run
from chains.planner import Change, Plan, PlannedRun, plan
from chains.status import ACTIVE, FINISHED, NOT_YET_SENT, Status, fold, upstream_view

log = logging.getLogger(__name__)

RUN_ID_VARIABLE = "BATON_RUN_ID"
INLINE_WAIT = 0.5  # a rate-limit wait this short is slept; a longer one is rescheduled
_RANK = {
    Status.QUEUED: 0,
    Status.WAITING: 0,
    Status.PENDING: 1,
    Status.RUNNING: 2,
    Status.MANUAL: 2,
}


class PlanningError(Exception):
    pass


# --- changes -> chains -------------------------------------------------------------------------


def ensure_repository(
    forge: Forge, path: str, *, remote_id: str = "", web_url: str = ""
) -> Repository:
    repo, _ = Repository.objects.get_or_create(forge=forge, path=path)
    changed: list[str] = []
    if remote_id and repo.remote_id != remote_id:
        repo.remote_id, changed = remote_id, [*changed, "remote_id"]
    if web_url and repo.web_url != web_url:
        repo.web_url, changed = web_url, [*changed, "web_url"]
    if changed:
        repo.save(update_fields=changed)
    return repo


def resolve_forge(name: str | None, upstream: Forge) -> Forge:
    """The forge a target names (`github:acme/docs`): a forge slug, or a kind with one forge."""
    if not name:
        return upstream
    by_slug = Forge.objects.filter(slug=name).first()
    if by_slug is not None:
        return by_slug
    if name == upstream.kind:
        return upstream
    matches = list(Forge.objects.filter(kind=name)[:2])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PlanningError(f"no forge called {name!r} is set up in Baton")
    raise PlanningError(f"several {name} forges are set up; name one by its slug")


def handle_change(forge: Forge, event: ChangeEvent, delivery: Delivery | None) -> str:
    change = event.change
    if event.action in (ChangeAction.EDITED, ChangeAction.MERGED):
        return f"{event.action}: nothing to trigger"
    upstream = ensure_repository(
        forge, change.project, remote_id=event.project_id, web_url=change.project_url
    )
    if event.action == ChangeAction.CLOSED:
        open_chains = Chain.objects.filter(
            repository=upstream, change_number=change.number, superseded_by__isnull=True
        )
        from bots import services

        closer = services.Actor(change.author or "baton", "webhook")
        for chain in open_chains:
            services.cancel_chain(
                chain, actor=closer, reason="the change was closed", only_interruptible=True
            )
        return "closed: interruptible runs canceled"

    the_plan, error = _plan_change(forge, event)
    runs = [] if error else _resolve_targets(forge, upstream, the_plan)
    reason = {
        ChangeAction.OPENED: "opened",
        ChangeAction.REOPENED: "reopened",
        ChangeAction.NEW_COMMITS: "new commits",
        ChangeAction.RERUN: "re-run",
    }[event.action]
    try:
        with transaction.atomic():
            if delivery is not None and Chain.objects.filter(delivery=delivery).exists():
                return "chain exists already"
            previous = list(
                Chain.objects.select_for_update().filter(
                    repository=upstream, change_number=change.number, superseded_by__isnull=True
                )
            )
            chain = Chain.objects.create(
                forge=forge,
                repository=upstream,
                delivery=delivery,
                change_number=change.number,
                change_url=change.url,
                title=change.title[:500],
                author=change.author,
                source_branch=change.source_branch,
                target_branch=change.target_branch,
                head_sha=change.head_sha,
                upstream_ref=change.upstream_ref,
                from_fork=event.from_fork,
                reason=f"{reason} by {change.author}" if change.author else reason,
                status=Status.FAILED if error else Status.PENDING,
                error=error,
                summary_comment_id=previous[0].summary_comment_id if previous else "",
            )
            Chain.objects.filter(pk__in=[p.pk for p in previous]).update(superseded_by=chain)
            created = Run.objects.bulk_create([_new_run(chain, *item) for item in runs])
            audit.record(
                "chain.start",
                actor=change.author or "unknown",
                surface="webhook",
                chain=chain,
                target=f"{change.project}!{change.number}",
                detail={
                    "reason": reason,
                    "sha": change.head_sha,
                    "runs": len(created),
                    "error": error,
                },
            )
            for old in previous:
                transaction.on_commit(functools.partial(_cancel_superseded, old))
            queued = [run.pk for run in created if run.status == Status.QUEUED]
            transaction.on_commit(lambda: _enqueue_triggers(queued))
            request_mirror(chain.pk)
    except IntegrityError:
        return "chain exists already"
    return f"chain {chain.pk} with {len(created)} runs" + (f" (error: {error})" if error else "")


def _plan_change(forge: Forge, event: ChangeEvent) -> tuple[Plan, str]:
    change = event.change
    # A change from a fork never gains from its own edits: read the file from the target branch.
    config_ref = change.target_branch if event.from_fork else change.head_sha
    path = settings.BATON_CONFIG_PATH
    try:
        text = forge_for(forge).read_file(change.project, path, config_ref)
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return Plan(()), f"could not read {path}: {exc.message}"
    try:
        config = parse_config(text) if text is not None else BatonConfig()
    except ConfigError as exc:
        return Plan(()), f"{path} is invalid: {exc}"
    return plan(change, config), ""


def _resolve_targets(
    forge: Forge, upstream: Repository, the_plan: Plan
) -> list[tuple[PlannedRun, Repository, str]]:
    resolved = []
    for planned in the_plan.runs:
        if planned.is_child:
            resolved.append((planned, upstream, ""))
            continue
        try:
            target_forge = resolve_forge(planned.forge, forge)
        except PlanningError as exc:
            resolved.append((planned, upstream, str(exc)))
            continue
        resolved.append((planned, ensure_repository(target_forge, planned.project), ""))
    return resolved


def _new_run(chain: Chain, planned: PlannedRun, repository: Repository, error: str) -> Run:
    status = Status.QUEUED
    if error:
        status = Status.FAILED
    elif planned.skip:
        status, error = Status.SKIPPED, planned.skip
    return Run(
        chain=chain,
        depth=1,
        key=planned.key,
        label=planned.label,
        repository=repository,
        is_child=planned.is_child,
        ref=planned.ref or "",
        workflow=planned.workflow or "",
        variables=planned.variables,
        masked_variables=planned.masked_variables,
        strategy=planned.strategy,
        interruptible=planned.interruptible,
        status=status,
        error=error,
        finished_at=timezone.now() if status in FINISHED else None,
    )


def _enqueue_triggers(run_ids: list[int]) -> None:
    from bots import tasks

    for run_id in run_ids:
        tasks.trigger_run.delay(run_id)


def _cancel_superseded(chain: Chain) -> None:
    from bots import services

    services.cancel_chain(
        chain,
        actor=services.BATON,
        reason="superseded by a newer commit",
        only_interruptible=True,
    )


def rerun_change(chain_id: int, actor: str) -> str:
    """Plan the chain's change again on its latest commit, as if it had just been opened."""
    old = Chain.objects.select_related("forge", "repository").get(pk=chain_id)
    if old.change_number is None:
        return "not a change"
    remote = forge_for(old.forge).get_change(old.repository.path, old.change_number)
    change = Change(
        forge=old.forge.slug,
        project=old.repository.path,
        project_url=old.repository.web_url,
        number=remote.number,
        url=remote.url,
        source_branch=remote.source_branch,
        target_branch=remote.target_branch,
        head_sha=remote.head_sha,
        upstream_ref=old.upstream_ref,
        title=remote.title,
        author=actor,
    )
    event = ChangeEvent(
        action=ChangeAction.RERUN,
        change=change,
        project_id=old.repository.remote_id,
        from_fork=remote.from_fork,
    )
    return handle_change(old.forge, event, None)


# --- runs -> forge -----------------------------------------------------------------------------


def _backoff(attempt: int) -> float:
    return min(300.0, 2.0 ** min(attempt, 8)) * random.uniform(0.8, 1.2)


def run_variables(run: Run) -> dict[str, str]:
    return {
        **run.variables,
        **run.masked_variables,
        "BATON_CHAIN_ID": str(run.chain_id),
        RUN_ID_VARIABLE: str(run.pk),
        "BATON_DEPTH": str(run.depth),
    }


def trigger(run_id: int) -> None:
    """Send one run to its forge, exactly once even if this runs twice or a worker dies."""
    now = timezone.now()
    with transaction.atomic():
        run = (
            Run.objects.select_for_update()
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
        uncertain = run.dispatch == Run.Dispatch.SENDING
        run.dispatch = Run.Dispatch.SENDING
        run.lease_until = now + timedelta(seconds=settings.BATON_TRIGGER_LEASE)
        run.send_attempts += 1
        run.save(update_fields=["dispatch", "lease_until", "send_attempts"])

    forge = forge_for(run.repository.forge)
    project = run.repository.path
    workflow = run.workflow or None
    ref = run.ref
    try:
        ref = ref or _default_branch(run)
        if uncertain:
            # An earlier attempt may have reached the forge: look for its marker before resending.
            found = forge.find_pipeline(
                project,
                ref,
                (RUN_ID_VARIABLE, str(run.pk)),
                run.created_at - timedelta(minutes=5),
                workflow=workflow,
            )
            if found is not None:
                _record_triggered(run.pk, found, ref)
                return
        at = run.reserved_at or throttle.reserve(forge.budgets("create", project, ref))
        if at - time.time() > INLINE_WAIT:
            _wait_for_turn(run.pk, at, uncertain=uncertain)
            return
        time.sleep(max(0.0, at - time.time()))
        remote = forge.create_pipeline(project, ref, run_variables(run), workflow=workflow)
    except ForgeError as exc:
        if exc.rate_limited:
            throttle.block(forge.budgets("create", project, ref), _retry_delay(exc, run))
        _trigger_failed(run, exc)
        return
    _record_triggered(run.pk, remote, ref)


def _wait_for_turn(run_id: int, at: float, *, uncertain: bool) -> None:
    """Hold the reserved slot and come back then; the run shows until when it waits."""
    when = datetime.fromtimestamp(at, tz=UTC)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        run.status = Status.WAITING
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
        remote = forge_for(repo.forge).get_project(repo.path)
        repo.default_branch, repo.remote_id, repo.web_url = (
            remote.default_branch,
            remote.id,
            remote.web_url,
        )
        repo.save(update_fields=["default_branch", "remote_id", "web_url"])
    return repo.default_branch


def _schedule_trigger(run_id: int, delay: float) -> None:
    from bots import tasks

    transaction.on_commit(
        lambda: tasks.trigger_run.apply_async((run_id,), countdown=max(0.0, delay))
    )


def _retry_delay(exc: ForgeError, run: Run) -> float:
    if exc.retry_after is not None:
        return exc.retry_after
    return _backoff(run.send_attempts)


def _trigger_failed(run: Run, exc: ForgeError) -> None:
    give_up = exc.permanent or (
        not exc.rate_limited and run.send_attempts > settings.BATON_MAX_FORGE_RETRIES
    )
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        run.lease_until = None
        run.reserved_at = None
        if give_up:
            run.status = Status.FAILED
            run.error = exc.message
            run.finished_at = timezone.now()
            # An uncertain last try stays SENDING so a manual retry looks before resending.
            run.save(update_fields=["status", "error", "finished_at", "lease_until", "reserved_at"])
            request_mirror(run.chain_id)
            log.warning("run %s failed to trigger: %s", run.pk, exc.message)
            return
        delay = _retry_delay(exc, run)
        run.dispatch = Run.Dispatch.SENDING if exc.uncertain else Run.Dispatch.IDLE
        run.not_before = timezone.now() + timedelta(seconds=delay)
        if exc.rate_limited:
            run.status = Status.WAITING
            run.error = f"waiting for rate limit until {run.not_before:%H:%M:%S} UTC"
        else:
            run.status = Status.QUEUED
            run.error = f"will retry at {run.not_before:%H:%M:%S} UTC: {exc.message}"
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


def _record_triggered(run_id: int, remote: RemotePipeline, ref: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        run.remote_id = remote.id  # "" until the forge's run is identified by its marker
        run.web_url = remote.web_url
        run.ref = ref
        run.undelivered = list(remote.undelivered)
        run.dispatch = Run.Dispatch.SENT
        run.lease_until = None
        run.reserved_at = None
        run.not_before = None
        run.error = ""
        if run.status == Status.WAITING:
            run.status = Status.QUEUED
        run.triggered_at = run.triggered_at or now
        run.last_seen_at = now
        _apply_status(
            run, remote.status, started_at=remote.started_at, finished_at=remote.finished_at
        )
        run.save()
        audit.record(
            "run.trigger",
            actor="baton",
            surface="system",
            run=run,
            target=f"{run.repository.path}@{ref}",
            detail={"pipeline": remote.id},
        )
        if run.cancel_requested and run.status in ACTIVE and run.remote_id:
            from bots import tasks

            transaction.on_commit(lambda: tasks.cancel_remote.delay(run_id))
        request_mirror(run.chain_id)


def _apply_status(run: Run, status: Status, *, started_at=None, finished_at=None) -> bool:  # type: ignore[no-untyped-def]
    """Move a run to what the forge says, never backwards within one attempt."""
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
    if status == Status.SUCCESS:
        run.error = ""  # e.g. a cancel that came too late: the run is simply green
    return changed


# --- forge news -> runs ------------------------------------------------------------------------


def handle_pipeline(forge: Forge, event: PipelineEvent, delivery: Delivery | None) -> str:
    query = Q(repository__forge=forge, remote_id=event.pipeline_id)
    marker = event.variables.get(RUN_ID_VARIABLE, "")
    if marker.isdigit():
        query |= Q(repository__forge=forge, pk=int(marker), remote_id="")
    elif event.marker_text:
        query |= Q(pk__in=_marked_runs(forge, event))
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(query).order_by("pk").first()
        if run is None:
            return "not a pipeline Baton triggered"
        if not run.remote_id:
            # The event beat the create call's answer: adopt the pipeline now.
            run.remote_id, run.dispatch = event.pipeline_id, Run.Dispatch.SENT
            run.triggered_at = run.triggered_at or timezone.now()
        run.web_url = event.web_url or run.web_url
        run.last_seen_at = timezone.now()
        changed = _apply_status(
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
            _record_triggered(run.pk, found, run.ref)
        return
    remote = forge.get_pipeline(run.repository.path, run.remote_id)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if _apply_status(
            run, remote.status, started_at=remote.started_at, finished_at=remote.finished_at
        ):
            run.save()
            request_mirror(run.chain_id)


# --- chains -> upstream change -----------------------------------------------------------------


def request_mirror(chain_id: int, *, after: float = 0.2) -> None:
    """Ask for the upstream change to be brought up to date; many asks become one mirror."""
    asked = Chain.objects.filter(pk=chain_id, mirror_requested_at__isnull=True).update(
        mirror_requested_at=timezone.now()
    )
    if asked:
        from bots import tasks

        transaction.on_commit(lambda: tasks.mirror_chain.apply_async((chain_id,), countdown=after))


def mirror(chain_id: int) -> bool:
    """Post commit statuses and the summary comment; False when another worker is mirroring."""
    now = timezone.now()
    claimed = Chain.objects.filter(
        Q(mirror_lease_until__isnull=True) | Q(mirror_lease_until__lt=now), pk=chain_id
    ).update(mirror_lease_until=now + timedelta(seconds=300), mirror_requested_at=None)
    if not claimed:
        return not Chain.objects.filter(pk=chain_id).exists()
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
    if any(b.spacing for b in writes) and any(r.status in NOT_YET_SENT for r in runs):
        # Writes are paced on this forge: let the triggers go first, mirror once they are out.
        request_mirror(chain.pk, after=5.0)
        return
    views = {
        run.pk: upstream_view(
            run.status, strategy=run.strategy, sent=run.dispatch == Run.Dispatch.SENT
        )
        for run in runs
    }
    for run in runs:
        view = views[run.pk]
        if view == run.mirrored_status:
            continue
        throttle.wait(writes)
        forge.set_commit_status(
            project,
            chain.head_sha,
            context=f"baton/{run.key}",
            status=view,
            description=_describe(run, view),
            target_url=run.web_url,
        )
        Run.objects.filter(pk=run.pk).update(mirrored_status=view)
    aggregate = Status.FAILED if chain.error else fold(views.values())
    finished = sum(run.status in FINISHED for run in runs)
    all_done = finished == len(runs)
    Chain.objects.filter(pk=chain.pk).update(
        status=aggregate, finished_at=timezone.now() if all_done else None
    )
    chain.status = aggregate
    if aggregate != chain.mirrored_status:
        throttle.wait(writes)
        forge.set_commit_status(
            project,
            chain.head_sha,
            context="baton",
            status=aggregate,
            description=(chain.error or f"{sum(r.is_finished for r in runs)}/{len(runs)} finished")[
                :255
            ],
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


def _describe(run: Run, view: Status) -> str:
    if run.error:
        return run.error[:255]
    return f"{run.repository.path}: {view.label}"
