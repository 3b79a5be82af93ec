"""Carry out `/baton` commands from a comment, each under the policy, and answer in one reply
that Baton edits in place: a quick acknowledgement first, then the results."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction

from bots import services
from bots.commands.parser import HELP, Command, Mistake, parse_comment
from bots.engine.planning import dry_run, ensure_repository
from bots.events import CommentEvent
from bots.forges.registry import forge_for
from bots.permissions import may
from bots.summary import MARKER, render, render_plan
from chains.models import Chain, CommentReply, Delivery, Forge, Repository, Run
from chains.status import ACTIVE, Status

log = logging.getLogger(__name__)

REPLY_MARKER = "<!-- baton:reply -->"


def handle_comment(forge: Forge, event: CommentEvent, delivery: Delivery | None) -> str:
    if _from_baton(forge, event):
        return "Baton's own comment"
    commands, mistakes = parse_comment(event.body)
    if not commands and not mistakes:
        return "no command"
    try:
        with transaction.atomic():
            reply = CommentReply.objects.create(forge=forge, comment_id=event.comment_id)
    except IntegrityError:
        return "handled already"
    client = forge_for(forge)
    said = ", ".join(f"`{c.text}`" for c in commands) or "your command"
    reply.reply_id = client.upsert_comment(
        event.project,
        event.number,
        f"{REPLY_MARKER}\n⏳ @{event.author}: working on {said}…",
        None,
    )
    reply.save(update_fields=["reply_id"])
    repository = ensure_repository(forge, event.project)
    sections = [_mistakes(mistakes)] if mistakes else []
    actor = services.Actor(event.author, "comment")
    for command in commands:
        try:
            sections.append(
                f"**`{command.text}`**\n\n" + _run(forge, repository, event, command, actor)
            )
        except services.ActionRefused as refused:
            sections.append(f"**`{command.text}`**\n\nNot done: {refused}")
    body = f"{REPLY_MARKER}\n@{event.author}\n\n" + "\n\n---\n\n".join(sections)
    client.upsert_comment(event.project, event.number, body, reply.reply_id)
    return f"{len(commands)} commands, {len(mistakes)} mistakes"


def _from_baton(forge: Forge, event: CommentEvent) -> bool:
    own = forge.bot_username and event.author == forge.bot_username
    return bool(own) or MARKER in event.body or REPLY_MARKER in event.body


def _mistakes(mistakes: list[Mistake]) -> str:
    lines = "\n".join(f"- `{m.text}`: {m.problem}" for m in mistakes)
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


def _check(forge: Forge, who: str, action: str, repository: Repository) -> None:
    verdict = may(forge, who, action, repository)
    if not verdict:
        raise services.ActionRefused(f"{who} may not {action} {repository.path}: {verdict.reason}")


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
        return f"❌ {result.error}"
    return render_plan(result.change, result.plan, result.targets, upstream=repository)


def _start(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    _check(forge, event.author, "view", repository)
    from bots import tasks

    only = sorted(args) if args else None
    transaction.on_commit(
        lambda: tasks.start_for_comment.delay(
            forge.pk, event.project, event.number, event.author, only
        )
    )
    what = ", ".join(args) if args else "every target"
    return (
        f"Starting {what} on the latest commit, for the change's author and with "
        f"{event.author}'s permissions too."
    )


def _retry(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    chain = _latest_chain(repository, event.number)
    if args == ("all",):
        _check(forge, event.author, "trigger", repository)
        services.rerun_chain(chain, actor=actor)
        return "Running the whole chain again on the latest commit."
    if not args or args == ("failed",):
        failed = list(chain.runs.filter(status=Status.FAILED).select_related("repository"))
        if not failed:
            return "No run has failed."
        for run in failed:
            _check(forge, event.author, "retry", run.repository)
        services.retry_failed(chain, actor=actor)
        return "Retrying " + ", ".join(f"`{r.key}`" for r in failed) + "."
    done = []
    for run in _runs_named(chain, args):
        _check(forge, event.author, "retry", run.repository)
        if run.status in (Status.FAILED, Status.CANCELED):
            services.retry_run(run, actor=actor)
        else:
            services.retry_subtree(run, actor=actor)
        done.append(f"`{run.key}`")
    return "Retrying " + ", ".join(done) + "."


def _cancel(
    forge: Forge,
    repository: Repository,
    event: CommentEvent,
    args: tuple[str, ...],
    actor: services.Actor,
) -> str:
    chain = _latest_chain(repository, event.number)
    runs = (
        list(chain.runs.filter(status__in=sorted(ACTIVE)).select_related("repository"))
        if not args or args == ("all",)
        else _runs_named(chain, args)
    )
    canceled = []
    for run in runs:
        _check(forge, event.author, "cancel", run.repository)
        if services.cancel_run(run, actor=actor):
            canceled.append(f"`{run.key}`")
    return ("Canceling " + ", ".join(canceled) + ".") if canceled else "Nothing was running."


def _runs_named(chain: Chain, keys: tuple[str, ...]) -> list[Run]:
    runs = {r.key: r for r in chain.runs.select_related("repository").order_by("depth", "pk")}
    unknown = [k for k in keys if k not in runs]
    if unknown:
        raise services.ActionRefused(
            f"no run called {', '.join(unknown)}; the runs are {', '.join(runs) or 'none'}"
        )
    return [runs[k] for k in keys]


HANDLERS: dict[str, Callable[..., str]] = {
    "help": _help,
    "status": _status,
    "plan": _plan,
    "run": _start,
    "retry": _retry,
    "cancel": _cancel,
}
