"""Who a chain runs for, and what a webhook must prove before it starts one.

- A chain runs for the change's author. When someone else acted (reopened it, pushed to it,
  asked for a run), their permissions are needed too: a target runs only if both may.
- The author is the forge's word, from its change API, never the payload's; a change the forge
  does not know starts nothing. A fork is a fork if either the payload or the forge says so.
- The project id a webhook names must be the one Baton has on record for that path (or the one
  the forge gives for it now).
- The same event delivered twice under different keys (a project hook and a group hook, or a
  replay) starts one chain: a chain for the same change, commit and action within
  BATON_REPEAT_WINDOW seconds is a repeat. The check holds across processes: it runs under a
  PostgreSQL lock in the transaction that creates the chain.
"""

from __future__ import annotations

import dataclasses
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from bots.events import ChangeAction, ChangeEvent
from bots.forges.base import Forge as ForgeClient
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from bots.permissions import Person
from chains.models import Chain, Forge, Repository
from chains.policy import Principal, UserPrincipal, Verdict

LOCK_CLASS = 0x6261746F  # "bato": the first key of Baton's advisory locks


def principals(
    forge: Forge, author: str, actor: str, user: UserPrincipal | None = None
) -> list[Principal]:
    """The author, and whoever else acted (``user``: a Baton user on the dashboard or the API;
    else the forge account ``actor``): a target needs every one of them to be allowed."""
    people: list[Principal] = [Person(forge, author)]
    if user is not None:
        people.append(user)
    elif actor and actor != author:
        people.append(Person(forge, actor))
    return people


def allowed(people: list[Principal], action: str, repository: Repository) -> Verdict:
    """Allowed if every principal may; else the first refusal, naming who."""
    verdict = Verdict(False, "nobody to run it for")
    for person in people:
        verdict = person.may(action, repository)
        if not verdict:
            who = person.username or "nobody"
            return Verdict(False, f"{who} may not {action} {repository.path}: {verdict.reason}")
    return verdict


def confirm_change(client: ForgeClient, event: ChangeEvent) -> ChangeEvent | str:
    """The event with the forge's word on what grants power (the change exists and is open at
    the commit the event names, its author, whether it comes from a fork), or why it starts
    nothing: a replayed old event neither runs an earlier commit nor supersedes a newer chain.
    An event already read from the forge (a comment's `/baton run`, a re-run) is not read
    again."""
    if event.confirmed:
        return event
    change = event.change
    try:
        remote = client.get_change(change.project, change.number or 0)
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return f"not started: the forge does not confirm {change.project} #{change.number}: " + (
            exc.message
        )
    if not remote.open:
        return f"not started: {change.project} #{change.number} is {remote.state} on the forge"
    if change.head_sha and remote.head_sha and remote.head_sha != change.head_sha:
        return (
            f"not started: {change.project} #{change.number} is at {remote.head_sha[:12]} now; "
            f"this event is about {change.head_sha[:12]}, an earlier commit"
        )
    actor = event.actor or change.author
    return dataclasses.replace(
        event,
        change=dataclasses.replace(change, author=remote.author),
        actor=actor,
        from_fork=event.from_fork or remote.from_fork,
        confirmed=True,
    )


def still_open(client: ForgeClient, event: ChangeEvent) -> str:
    """Why a "closed" event from a webhook cancels nothing ("" when the forge confirms the
    change is no longer open): a close the forge does not confirm (forged, or late and replayed
    after a reopen) must not cancel an open change's runs."""
    change = event.change
    try:
        remote = client.get_change(change.project, change.number or 0)
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return ""  # the forge no longer has the change: it is closed for good
    if remote.open:
        return f"not canceled: {change.project} #{change.number} is still open on the forge"
    return ""


def check_project(forge: Forge, path: str, remote_id: str, known: str | None = None) -> str:
    """'' when the project id a webhook names fits what Baton knows of ``path`` (or what the
    forge says now, for a project deleted and made again); else why not, in words.
    ``known``: the id Baton has on record, when the caller has read it already."""
    if not remote_id:
        return ""
    if known is None:
        known = (
            Repository.objects.filter(forge=forge, path=path)
            .values_list("remote_id", flat=True)
            .first()
        )
    if not known or known == remote_id:
        return ""
    try:
        remote = forge_for(forge).get_project(path)
    except ForgeError as exc:
        if not exc.permanent:
            raise
        remote = None
    if remote is not None and remote.id == remote_id:
        return ""
    return (
        f"not started: the webhook says {path} is project {remote_id[:20]}, but on "
        f"{forge.name} {path} is project {known}"
    )


def lock_change(repository: Repository, number: int | None) -> None:
    """Hold, until the transaction ends, the right to start chains for this change (every
    process; PostgreSQL only, SQLite runs one writer at a time anyway)."""
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(f"{repository.pk}:{number}".encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, key])


def repeat_of(repository: Repository, event: ChangeEvent) -> int | None:
    """The id of a chain started for the same change, commit and action within the window. A
    change is opened only once, so an "opened" event is a repeat of any chain opened for it
    before, however long ago (a replay after the window must not start everything again)."""
    window = settings.BATON_REPEAT_WINDOW
    if window <= 0:
        return None
    change = event.change
    chains = Chain.objects.filter(
        repository=repository,
        change_number=change.number,
        head_sha=change.head_sha,
        trigger_action=str(event.action),
    )
    if event.action != ChangeAction.OPENED:
        chains = chains.filter(created_at__gte=timezone.now() - timedelta(seconds=window))
    return chains.order_by("-created_at").values_list("pk", flat=True).first()
