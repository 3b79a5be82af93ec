"""From a pushed branch or a created tag to a chain: the targets whose `on:` names the event
(push: branch pushes, tag: tag pushes) run with `UPSTREAM_REF` = `refs/heads/<b>` or
`refs/tags/<t>`, statuses go on the pushed commit (there is no change to comment on), and a new
push to a ref supersedes the chain of the previous push to it, as a new commit does for a change.

A push whose `.baton.yml` names no target for it starts no chain (most pushes trigger nothing);
the delivery says why.
"""

from __future__ import annotations

import functools
import logging
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bots import logcontext, services
from bots.engine.mirroring import request_mirror
from bots.engine.planning import (
    keep_targets,
    new_run,
    permitted,
    read_config,
    read_params,
    resolve_targets,
    start_runs,
    upstream_repository,
    with_rules,
)
from bots.engine.principals import LOCK_CLASS, principals
from bots.events import PushEvent
from bots.forges.base import ForgeError
from chains import audit, quarantine
from chains.conditions import Context
from chains.config import BatonConfig, ConfigError
from chains.models import Chain, Delivery, Forge, Repository
from chains.planner import Plan, plan
from chains.status import Status

log = logging.getLogger(__name__)


def ref_name(event: PushEvent) -> str:
    """The branch or tag name (what `branches:` matches and the release view is keyed by)."""
    ref = event.change.upstream_ref
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


def describe(event: PushEvent) -> str:
    return f"{'push to' if event.kind == 'push' else 'tag'} {ref_name(event)}"


def push_context(event: PushEvent) -> Context:
    """`branches:` matches the branch pushed, or the tag's name; `changes` sees the files the
    push's commits name."""
    change = event.change
    return Context(
        branch=ref_name(event),
        source=event.kind,
        message=change.message or change.title,
        title=change.title,
        author=event.pusher,
        changed_files=lambda: event.changed_files,
    )


def plan_push(forge: Forge, event: PushEvent) -> tuple[Plan, str]:
    """The plan for a push, read at the pushed commit, or an empty plan and why (in words)."""
    change = event.change
    path = settings.BATON_CONFIG_PATH
    try:
        config = read_config(forge, change.project, change.head_sha) or BatonConfig()
        config = with_rules(config, change.project)
        if not any(event.kind in target.on for target in config.downstream):
            return Plan(()), ""
        params = read_params(forge, change.project, change.head_sha, config)
    except ConfigError as exc:
        return Plan(()), f"{path} is invalid: {exc}"
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return Plan(()), f"could not read {path}: {exc.message}"
    return plan(change, config, context=push_context(event), params=params), ""


def _lock_ref(repository: Repository, ref: str) -> None:
    """Hold, until the transaction ends, the right to start chains for this ref (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(f"{repository.pk}:{ref}".encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, key])


def _repeat_of(repository: Repository, event: PushEvent) -> int | None:
    """The id of a chain for the same ref and commit within BATON_REPEAT_WINDOW (the same push
    delivered by a project hook and a group hook, or replayed under a new key)."""
    window = settings.BATON_REPEAT_WINDOW
    if window <= 0:
        return None
    return (
        Chain.objects.filter(
            repository=repository,
            change_number__isnull=True,
            upstream_ref=event.change.upstream_ref,
            head_sha=event.change.head_sha,
            trigger_action=event.kind,
            created_at__gte=timezone.now() - timedelta(seconds=window),
        )
        .order_by("-created_at")
        .values_list("pk", flat=True)
        .first()
    )


def handle_push(forge: Forge, event: PushEvent, delivery: Delivery | None) -> str:
    change = event.change
    upstream = upstream_repository(forge, event)
    if isinstance(upstream, str):
        return upstream
    if delivery is not None and (first := _repeat_of(upstream, event)) is not None:
        return f"a repeat of chain {first} (same {describe(event)} at the same commit)"
    the_plan, error = plan_push(forge, event)
    if not the_plan.runs:
        # Most pushes trigger nothing; a file that cannot be read says so here, not as a failed
        # chain on every push to every branch.
        return f"{describe(event)}: " + (error or f"no target runs on {event.kind}")
    targets = resolve_targets(forge, upstream, the_plan.runs)
    people = principals(forge, event.pusher, event.pusher)
    targets = keep_targets([permitted(people, *target) for target in targets])
    reason = f"{describe(event)} by {event.pusher}" if event.pusher else describe(event)
    try:
        # A delivery handled again after its chain was written: the chain's insert fails
        # (one chain per delivery), caught as IntegrityError below.
        with transaction.atomic():
            _lock_ref(upstream, change.upstream_ref)
            if delivery is not None and (first := _repeat_of(upstream, event)) is not None:
                return f"a repeat of chain {first} (same {describe(event)} at the same commit)"
            previous = list(
                Chain.objects.select_for_update(of=("self",)).filter(
                    repository=upstream,
                    change_number__isnull=True,
                    upstream_ref=change.upstream_ref,
                    superseded_by__isnull=True,
                )
            )
            chain = Chain.objects.create(
                forge=forge,
                repository=upstream,
                delivery=delivery,
                change_number=None,
                title=change.title[:500],
                author=event.pusher,
                runs_for=event.pusher,
                actor=event.pusher,
                trigger_action=event.kind,
                source_branch=change.source_branch,
                # The release view lists chains by the ref they are for: the branch pushed, or
                # the tag.
                target_branch=ref_name(event),
                head_sha=change.head_sha,
                upstream_ref=change.upstream_ref,
                reason=reason[:255],
                status=Status.PENDING,
            )
            logcontext.bind(chain_id=chain.pk)
            Chain.objects.filter(pk__in=[p.pk for p in previous]).update(superseded_by=chain)
            held = quarantine.reasons(repository.pk for _, repository, _ in targets)
            created = start_runs([new_run(chain, *target, held=held) for target in targets])
            log.info(
                "chain %s started for %s %s: %s runs",
                chain.pk,
                change.project,
                change.upstream_ref,
                len(created),
            )
            audit.record(
                "chain.start",
                actor=event.pusher or "unknown",
                surface="webhook",
                chain=chain,
                target=f"{change.project}@{change.upstream_ref}",
                detail={
                    "reason": reason,
                    "sha": change.head_sha,
                    "runs": len(created),
                    "excluded": dict(the_plan.excluded),
                },
            )
            for old in previous:
                transaction.on_commit(functools.partial(_cancel_superseded, old))
            request_mirror(chain.pk)
    except IntegrityError:
        return "chain exists already"
    return f"chain {chain.pk} with {len(created)} runs for {describe(event)}"


def _cancel_superseded(chain: Chain) -> None:
    services.cancel_chain(
        chain,
        actor=services.BATON,
        reason="superseded by a newer push to the same ref",
        only_interruptible=True,
    )
