"""Which events a chain has reached, and the one message each event makes (pure functions over a
chain and its runs; notify/dispatch.py reads the database and writes the rows).

No storm: every event is one message per chain and channel, however many runs it concerns; the
message lists at most ``MAX_LISTED`` of them and says "and N more".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import reverse

from chains import failures
from chains.models import Forge
from chains.redaction import PRIVATE, hidden_runs, private_names, scrub
from chains.status import FINISHED, Status
from notify.models import Event

MAX_LISTED = 10  # runs named in one message
MAX_REASONS = 3  # failed jobs named per run
MAX_TITLE = 300
MAX_LINE = 300

# How a permission refusal reads in Run.error (chains/policy.py, bots/engine/planning.py).
REFUSALS = ("no grant gives ", " may not ", "is not linked to a Baton user", "refused: ")

TITLES = {
    Event.CHAIN_FAILED: "Chain failed",
    Event.CHAIN_RECOVERED: "Chain recovered",
    Event.RELEASE_FINISHED: "Release chain finished",
    Event.RUN_MANUAL: "Waiting for a manual action",
    Event.RUN_REFUSED: "Run refused by permissions",
}


def failed(run: Any) -> bool:
    """A run that fails the chain (a soft failure does not)."""
    return run.status == Status.FAILED and not run.soft_fail


def refused(run: Any) -> bool:
    """A run never sent because the people the chain runs for may not trigger it."""
    return (
        run.status == Status.FAILED
        and run.dispatch != "sent"
        and any(marker in (run.error or "") for marker in REFUSALS)
    )


def finished(chain: Any) -> bool:
    return chain.status in FINISHED and chain.finished_at is not None


def reached(chain: Any, runs: Sequence[Any], *, red_before: bool) -> dict[Event, list[Any]]:
    """The events the chain is at now, each with the runs it concerns. ``red_before``: this
    chain, or the one before it on the same change or branch, failed (for "recovered")."""
    found: dict[Event, list[Any]] = {}
    done = finished(chain)
    if done and chain.status == Status.FAILED:
        found[Event.CHAIN_FAILED] = [r for r in runs if failed(r)]
    if done and chain.status == Status.SUCCESS and red_before:
        found[Event.CHAIN_RECOVERED] = []
    if done:
        found[Event.RELEASE_FINISHED] = [r for r in runs if failed(r)]
    manual = [r for r in runs if r.status == Status.MANUAL]
    if manual:
        found[Event.RUN_MANUAL] = manual
    refusals = [r for r in runs if refused(r)]
    if refusals:
        found[Event.RUN_REFUSED] = refusals
    return found


def reasons_pending(chain: Any, runs: Iterable[Any]) -> bool:
    """Whether a failed run's reasons (the failed jobs, fetched after it ended) may still come."""
    return any(
        failed(r)
        and r.dispatch == "sent"
        and r.remote_id
        and not _has_reasons(r)
        and not refused(r)
        for r in runs
    )


def _has_reasons(run: Any) -> bool:
    data = run.failed_jobs
    return (
        isinstance(data, dict)
        and data.get("attempt") == run.attempt
        and str(data.get("pipeline")) == str(run.remote_id)
    )


@dataclass(frozen=True)
class Message:
    title: str
    body: str


def chain_name(chain: Any) -> str:
    """``acme/app !12 “Fix the thing”`` (GitHub: ``#12``), or the branch for a push."""
    mark = "!" if chain.forge.kind == Forge.Kind.GITLAB else "#"  # as dashboard/presenters.py
    where = f"{mark}{chain.change_number}" if chain.change_number else chain.source_branch
    title = f" “{chain.title}”" if chain.title else ""
    return _line(f"{chain.repository.path} {where}{title}")


def chain_link(chain: Any) -> str:
    return settings.BATON_BASE_URL + reverse("chain-detail", kwargs={"pk": chain.pk})


def message(event: Event, chain: Any, runs: Sequence[Any], concerned: Sequence[Any]) -> Message:
    """The message for ``event``: the chain's name, what it concerns and why, and a link. Runs in
    projects the change's readers may not know are named "a private project"."""
    names = private_names(chain.repository, runs)
    hidden = hidden_runs(chain.repository, runs)
    name = chain_name(chain)
    title = _line(f"{TITLES[event]}: {scrub(name, names)}")[:MAX_TITLE]
    lines = [_headline(event, chain)]
    if chain.error and event == Event.CHAIN_FAILED:
        lines.append(_line(f"Why: {scrub(chain.error, names)}"))
    if concerned:
        lines.append(_heading(event, len(concerned)))
        for run in concerned[:MAX_LISTED]:
            lines.append(scrub(_run_line(event, run, run.pk in hidden), names))
        if len(concerned) > MAX_LISTED:
            lines.append(f"… and {len(concerned) - MAX_LISTED} more")
    lines.append(chain_link(chain))
    return Message(title, "\n".join(lines))


def _headline(event: Event, chain: Any) -> str:
    target = f" into {chain.target_branch}" if chain.target_branch else ""
    words = {
        Event.CHAIN_FAILED: "failed",
        Event.CHAIN_RECOVERED: "is green again",
        Event.RELEASE_FINISHED: f"finished: {chain.status}",
        Event.RUN_MANUAL: "waits for a manual action",
        Event.RUN_REFUSED: "could not trigger everything: permissions refused",
    }[event]
    return _line(f"{chain_name(chain)}{target} at {chain.head_sha[:8]} {words}.")


def _heading(event: Event, n: int) -> str:
    what = {
        Event.RUN_MANUAL: "waiting",
        Event.RUN_REFUSED: "refused",
    }.get(event, "failed")
    return f"{n} {'run' if n == 1 else 'runs'} {what}:"


def _run_line(event: Event, run: Any, hidden: bool) -> str:
    if hidden:
        return f"- {PRIVATE}"
    who = run.label or run.key
    where = f" ({run.repository.path})" if run.repository.path not in who else ""
    why = ""
    if event in (Event.CHAIN_FAILED, Event.RELEASE_FINISHED):
        jobs = failures.shown(run)
        if jobs:
            named = [f"{j.label}" + (f" {j.url}" if j.url else "") for j in jobs[:MAX_REASONS]]
            more = f", +{len(jobs) - MAX_REASONS} more" if len(jobs) > MAX_REASONS else ""
            why = ": " + ", ".join(named) + more
        elif run.error:
            why = f": {run.error}"
    elif event == Event.RUN_REFUSED and run.error:
        why = f": {run.error}"
    link = f" {run.web_url}" if run.web_url and event == Event.RUN_MANUAL else ""
    return _line(f"- {who}{where}{why}{link}", MAX_LINE * 2)


def _line(text: str, limit: int = MAX_LINE) -> str:
    text = failures.clean(text, limit)
    return text
