"""Carry out `/baton` commands from a comment, each under the policy, and answer in one reply
that Baton edits in place: a quick acknowledgement first, then the results."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction

from bots import kicks, services
from bots.commands.parser import HELP, Command, Mistake, parse_comment
from bots.engine.planning import dry_run, seen_repository
from bots.events import CommentEvent
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from bots.markdown import code, text, truncate
from bots.permissions import Person, may
from bots.summary import MARKER, render, render_plan
from chains.models import Chain, CommentReply, Delivery, Forge, Repository, Run
from chains.policy import decide
from chains.redaction import (
    PRIVATE,
    hidden_runs,
    hides,
    private_names,
    private_projects,
    scrub,
)
from chains.status import ACTIVE, Status

log = logging.getLogger(__name__)

REPLY_MARKER = "<!-- baton:reply -->"
ECHO_CHARS = 200  # of a command line quoted back in a reply


def handle_comment(forge: Forge, event: CommentEvent, delivery: Delivery | None) -> str:
    if _from_baton(forge, event):
        return "Baton's own comment"
    commands, mistakes = parse_comment(event.body)
    if not commands and not mistakes:
        return "no command"
    if delivery is not None:
        # A webhook says who wrote what; the forge has the last word on both.
        posted = _as_posted(forge, event)
        if isinstance(posted, str):
            return posted
        event = posted
        if _from_baton(forge, event):
            return "Baton's own comment"
        commands, mistakes = parse_comment(event.body)
        if not commands and not mistakes:
            return "no command in the comment as the forge has it"
    limit = settings.BATON_MAX_COMMANDS
    skipped = len(commands[limit:]) + len(mistakes[limit:])
    commands, mistakes = commands[:limit], mistakes[:limit]
    try:
        with transaction.atomic():
            reply = CommentReply.objects.create(forge=forge, comment_id=event.comment_id)
    except IntegrityError:
        return "handled already"
    client = forge_for(forge)
    said = ", ".join(_echo(c.text) for c in commands) or "your command"
    reply.reply_id = client.upsert_comment(
        event.project,
        event.number,
        f"{REPLY_MARKER}\n⏳ {_mention(event.author)}: working on {said}…",
        None,
    )
    reply.save(update_fields=["reply_id"])
    repository = seen_repository(forge, event.project)
    sections = [_mistakes(mistakes)] if mistakes else []
    if skipped:
        sections.insert(
            0,
            f"I carry out at most {limit} commands per comment; {skipped} more were left out. "
            "Write them in a new comment.",
        )
    actor = services.Actor(event.author, "comment")
    for command in commands:
        try:
            sections.append(
                f"**{_echo(command.text)}**\n\n" + _run(forge, repository, event, command, actor)
            )
        except services.ActionRefused as refused:
            why = str(refused)
            if not isinstance(refused, _NoSuchRun):
                why = scrub(why, _private_names(repository, event.number))
            sections.append(f"**{_echo(command.text)}**\n\nNot done: {text(why)}")
    body = f"{REPLY_MARKER}\n{_mention(event.author)}\n\n" + "\n\n---\n\n".join(sections)
    body = truncate(body, settings.BATON_MAX_REPLY_CHARS)
    client.upsert_comment(event.project, event.number, body, reply.reply_id)
    return f"{len(commands)} commands, {len(mistakes)} mistakes"


def _as_posted(forge: Forge, event: CommentEvent) -> CommentEvent | str:
    """The event with the comment's body as the forge has it, or why nothing is carried out:
    the forge has no such comment on the change, or says someone else wrote it. (Someone
    holding only the webhook secret could otherwise act with a release manager's grants.)"""
    try:
        remote = forge_for(forge).get_comment(event.project, event.number, event.comment_id)
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return f"not carried out: the forge does not confirm the comment ({exc.message})"
    if remote.author.lower() != event.author.lower():
        return (
            f"not carried out: the forge says the comment is by {remote.author!r}, "
            f"not {event.author!r}"
        )
    return dataclasses.replace(event, body=remote.body)


def _echo(line: str) -> str:
    """A line of the comment, quoted back as code, at most ECHO_CHARS of it."""
    return code(line if len(line) <= ECHO_CHARS else line[:ECHO_CHARS] + "…")


# Names that mention a whole group rather than a person (GitLab's `@all`/`@here`, and the
# habit of chat bridges); no person on either forge holds them, but a webhook may claim them.
EVERYONE = frozenset({"all", "here", "everyone", "channel"})


def _mention(username: str) -> str:
    """The commenter, mentioned: a forge username never holds markdown, but it is checked, and a
    name that would notify everyone is written as plain text."""
    valid = bool(username) and all(ch.isalnum() or ch in "-_." for ch in username)
    if not valid or username.lower() in EVERYONE:
        return text("@" + username)
    return f"@{username}"


def _private_names(repository: Repository, number: int) -> set[str]:
    """What a reply on this change must not name: the hidden runs of its chains (a refusal from
    the engine may name the run it stopped at)."""
    runs = Run.objects.filter(chain__repository=repository, chain__change_number=number)
    return private_names(repository, runs.select_related("repository"))


def _from_baton(forge: Forge, event: CommentEvent) -> bool:
    own = forge.bot_username and event.author == forge.bot_username
    return bool(own) or MARKER in event.body or REPLY_MARKER in event.body


def _mistakes(mistakes: list[Mistake]) -> str:
    lines = "\n".join(f"- {_echo(m.text)}: {m.problem}" for m in mistakes)
    return f"I did not understand:\n{lines}\n\n{HELP}"


def _latest_chain(repository: Repository, number: int) -> Chain:
    chain = (
        Chain.objects.filter(repository=repository, change_number=number, superseded_by=None)
        .order_by("-created_at")
        .first()
    )
    if chain is None:
        raise services.ActionRefused("this change has no chain yet; `/baton run` starts one")
    return chain


def _check(
    forge: Forge, who: str, action: str, repository: Repository, upstream: Repository | None = None
) -> None:
    """Refuse unless ``who`` may; the reply is read on ``upstream``'s change, so a project its
    readers may not know is not named (nor is the reason, which names it)."""
    verdict = may(forge, who, action, repository)
    if verdict:
        return
    if upstream is not None and hides(upstream, repository):
        raise services.ActionRefused(f"{who} may not {action} {PRIVATE} this touches")
    raise services.ActionRefused(f"{who} may not {action} {repository.path}: {verdict.reason}")


def _hidden(chain: Chain) -> set[int]:
    return hidden_runs(chain.repository, chain.runs.select_related("repository"))


def _named(hidden: set[int], run: Run) -> str:
    """A run in a reply on the change (``hidden``: the runs its readers may not know)."""
    return PRIVATE if run.pk in hidden else code(run.key)


def _run(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    command: Command,
    actor: services.Actor,
) -> str:
    handler: Callable[..., str] = HANDLERS[command.verb]
    return handler(forge, repository, event, command.args, actor)


def _help(*_: object) -> str:
    return HELP


def _status(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    _check(forge, event.author, "view", repository)
    chain = _latest_chain(repository, event.number)
    return render(chain, list(chain.runs.select_related("repository").order_by("depth", "pk")))


def _plan(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    _check(forge, event.author, "view", repository)
    result = dry_run(
        forge,
        event.project,
        event.number,
        event.author,
        lambda person, action, target: may(forge, person, action, target),
    )
    if result.error:
        return f"❌ {text(result.error)}"
    return render_plan(result.change, result.plan, result.targets, upstream=repository)


def _start(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    _check(forge, event.author, "view", repository)
    only = sorted(args) if args else None
    kicks.start_for_comment(forge.pk, event.project, event.number, event.author, only)
    what = ", ".join(text(a) for a in args) if args else "every target"
    return (
        f"Starting {what} on the latest commit, for the change's author and with "
        f"{text(event.author)}'s permissions too."
    )


def _allow(person: Person, verb: str, target: Chain | Run) -> None:
    """The one policy's verdict on ``verb`` (``chains.policy.decide``), in its words."""
    verdict = decide(person, verb, target)
    if not verdict:
        raise services.ActionRefused(verdict.reason)


def _retry(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    chain = _latest_chain(repository, event.number)
    person = Person(forge, event.author)
    if args == ("all",):
        _allow(person, "rerun", chain)
        services.rerun_chain(chain, actor=actor)
        return "Running the whole chain again on the latest commit."
    if not args or args == ("failed",):
        failed = list(chain.runs.filter(status=Status.FAILED).order_by("depth", "pk"))
        if not failed:
            return "No run has failed."
        _allow(person, "retry-failed", chain)
        hidden = _hidden(chain)
        services.retry_failed(chain, actor=actor)
        return "Retrying " + ", ".join(_named(hidden, r) for r in failed) + "."
    # Every named run is checked before any is retried: all or nothing.
    asked = [
        (run, "retry" if run.status in (Status.FAILED, Status.CANCELED) else "retry-subtree")
        for run in _runs_named(chain, args, person)
    ]
    for run, verb in asked:
        _allow(person, verb, run)
    for run, verb in asked:
        if verb == "retry":
            services.retry_run(run, actor=actor)
        else:
            services.retry_subtree(run, actor=actor)
    hidden = _hidden(chain)
    return "Retrying " + ", ".join(_named(hidden, run) for run, _ in asked) + "."


def _cancel(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    chain = _latest_chain(repository, event.number)
    person = Person(forge, event.author)
    if not args or args == ("all",):
        _allow(person, "cancel-chain", chain)
        runs = list(chain.runs.filter(status__in=sorted(ACTIVE)).order_by("depth", "pk"))
    else:
        runs = _runs_named(chain, args, person)
        for run in runs:  # all checked before any is canceled
            _allow(person, "cancel", run)
    hidden = _hidden(chain)
    canceled = [_named(hidden, run) for run in runs if services.cancel_run(run, actor=actor)]
    return ("Canceling " + ", ".join(canceled) + ".") if canceled else "Nothing was running."


class _NoSuchRun(services.ActionRefused):
    """Keys that name no run the commenter may know of. The words name only what the commenter
    wrote and runs the change may name, so they are not scrubbed: scrubbing would replace a
    correctly guessed hidden key and so confirm the guess."""


def _runs_named(chain: Chain, keys: tuple[str, ...], person: Person) -> list[Run]:
    runs = {r.key: r for r in chain.runs.select_related("repository").order_by("depth", "pk")}
    hidden = hidden_runs(chain.repository, runs.values())
    # The key of a run the change may not name is known only to those who may view its project:
    # for anyone else it is no key at all, so a guess is not confirmed by a different refusal.
    unknown = [
        k
        for k in keys
        if k not in runs or (runs[k].pk in hidden and not person.may("view", runs[k].repository))
    ]
    if unknown:
        # The reply is read on the change: keys of runs its readers may not know stay out.
        shown = [k for k, r in runs.items() if r.pk not in hidden]
        others = len(runs) - len(shown)
        listed = ", ".join(shown) or "none"
        if others:
            listed += f" and {others} in {private_projects(others)}"
        raise _NoSuchRun(f"no run called {', '.join(unknown)}; the runs are {listed}")
    return [runs[k] for k in keys]


HANDLERS: dict[str, Callable[..., str]] = {
    "help": _help,
    "status": _status,
    "plan": _plan,
    "run": _start,
    "retry": _retry,
    "cancel": _cancel,
}
