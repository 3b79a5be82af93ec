"""From a settled chain to notification rows: which events it reached, which channels want each
(admin subscriptions, and the channels its `.baton.yml` `notify:` names), and one row per
(chain, event, channel) — the unique row is what makes each message go out once, however many
workers look at the chain, and however often.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from chains.globs import PatternError, branch_matches, glob_match
from chains.models import Chain, Grant, Run
from chains.status import Status
from notify import events
from notify.models import DEFAULT_EVENTS, ChainNotify, Channel, Event, Notification, Subscription

log = logging.getLogger(__name__)


def anything_to_do() -> bool:
    """Whether any channel is set up (else the engine does not even ask)."""
    return Channel.objects.filter(enabled=True).exists()


def chain_settled(chain_id: int, deliver: Callable[[int], Any]) -> float | None:
    """Create the rows of the events ``chain_id`` reached and hand each new one to ``deliver``
    (after commit). Returns seconds to wait and look again when a failed run's reasons (fetched
    after it ended) have not come yet, for at most BATON_NOTIFY_REASON_WAIT seconds."""
    chain = Chain.objects.select_related("forge", "repository").filter(pk=chain_id).first()
    if chain is None:
        return None
    runs = list(chain.runs.select_related("repository").order_by("depth", "pk"))
    reached = events.reached(chain, runs, red_before=_red_before(chain))
    if not reached:
        return None
    if Event.CHAIN_FAILED in reached or Event.RELEASE_FINISHED in reached:
        wait = settings.BATON_NOTIFY_REASON_WAIT
        young = chain.finished_at and chain.finished_at > timezone.now() - timedelta(seconds=wait)
        if young and events.reasons_pending(chain, runs):
            return 2.0
    wanted = recipients(chain)
    for event, concerned in reached.items():
        for channel in wanted.get(event, ()):
            _create(chain, event, channel, runs, concerned, deliver)
    return None


def _create(
    chain: Chain,
    event: Event,
    channel: Channel,
    runs: list[Run],
    concerned: list[Run],
    deliver: Callable[[int], Any],
) -> None:
    if Notification.objects.filter(chain=chain, event=event, channel=channel).exists():
        return
    text = events.message(event, chain, runs, concerned)
    try:
        with transaction.atomic():
            row = Notification.objects.create(
                chain=chain, event=event, channel=channel, title=text.title, body=text.body
            )
    except IntegrityError:
        return  # another worker made it first: it sends it
    log.info("chain %s: %s → channel %s", chain.pk, event, channel.name)
    transaction.on_commit(lambda: deliver(row.pk))


def _red_before(chain: Chain) -> bool:
    """This chain failed before (it was retried), or the one before it on the same change (or,
    for a push, the same branch) ended failed."""
    if Notification.objects.filter(chain=chain, event=Event.CHAIN_FAILED).exists():
        return True
    earlier = Chain.objects.filter(
        repository_id=chain.repository_id,
        created_at__lt=chain.created_at,
        status__in=[Status.SUCCESS, Status.FAILED],
    )
    if chain.change_number:
        earlier = earlier.filter(change_number=chain.change_number)
    else:
        earlier = earlier.filter(change_number__isnull=True, source_branch=chain.source_branch)
    last = earlier.order_by("-created_at").values_list("status", flat=True).first()
    return last == Status.FAILED


def release_refs(chain: Chain) -> list[str]:
    """What a release pattern is matched against: the target branch, the tag, the branch."""
    refs = [chain.target_branch]
    if chain.upstream_ref.startswith("refs/tags/"):
        refs.append(chain.upstream_ref.removeprefix("refs/tags/"))
    elif not chain.change_number:
        refs.append(chain.source_branch)
    return [r for r in refs if r]


def _matches(patterns: list[str], refs: list[str]) -> bool:
    positive = [p for p in patterns if not p.startswith("!")]
    try:
        return bool(positive) and any(branch_matches(patterns, ref) for ref in refs)
    except PatternError:
        return False


def _covers(subscription: Subscription, chain: Chain) -> bool:
    if subscription.forge_id and subscription.forge_id != chain.forge_id:
        return False
    path = chain.repository.path
    try:
        if subscription.projects and glob_match(subscription.projects, path):
            return True
        if subscription.team_id:
            grants = Grant.objects.filter(team_id=subscription.team_id)
            return any(
                g.forge_id in (None, chain.forge_id) and glob_match(g.projects, path)
                for g in grants
            )
    except PatternError:
        return False
    return False


def recipients(chain: Chain) -> dict[Event, list[Channel]]:
    """For each event, the enabled channels that want it for this chain."""
    wanted: dict[Event, dict[int, Channel]] = {}
    refs = release_refs(chain)
    subs = Subscription.objects.filter(channel__enabled=True).select_related("channel")
    for sub in subs:
        if not _covers(sub, chain):
            continue
        for name in sub.events or DEFAULT_EVENTS:
            if name not in Event.values:
                continue
            if name == Event.RELEASE_FINISHED and not _matches(sub.release_refs.split(), refs):
                continue
            wanted.setdefault(Event(name), {})[sub.channel.pk] = sub.channel
    entries = ChainNotify.objects.filter(chain=chain).values_list("entries", flat=True).first()
    for entry in entries or []:
        channel = Channel.objects.filter(name=entry.get("channel"), enabled=True).first()
        if channel is None:
            log.warning("chain %s: notify names no enabled channel %r", chain.pk, entry)
            continue
        branches = entry.get("branches") or []
        try:
            if branches and not any(branch_matches(branches, ref) for ref in refs):
                continue
        except PatternError:
            continue
        for name in entry.get("events") or DEFAULT_EVENTS:
            if name in Event.values:
                wanted.setdefault(Event(name), {})[channel.pk] = channel
    return {event: list(channels.values()) for event, channels in wanted.items()}


def remember(chain_id: int, entries: list[dict[str, object]]) -> None:
    """Keep the `notify:` list of the `.baton.yml` the chain was planned from."""
    if entries:
        ChainNotify.objects.update_or_create(chain_id=chain_id, defaults={"entries": entries})
