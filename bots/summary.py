"""What Baton writes on a change: the summary comment (edited in place) and `/baton plan`.

On a public project, a downstream project that is not public (or whose visibility Baton does not
know) is written as "a private project": no name, key, label, ref, variables or link, and free text
(errors, verdicts) has its names replaced (chains/redaction.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from bots.markdown import code, link, text, truncate
from chains import eta, failures, quarantine
from chains.failures import Failure
from chains.models import Chain, Repository, Run
from chains.planner import Change, Plan, PlannedRun
from chains.policy import Verdict
from chains.redaction import MASK, PRIVATE, hidden_runs, hides, private_names, scrub
from chains.retrying import attempt_words
from chains.runstate import soft_failed
from chains.status import Status

MARKER = "<!-- baton:summary -->"
SUMMARY_JOBS = 3  # failed jobs named per run in the summary comment

ICONS = {
    Status.QUEUED: "⏳",
    Status.WAITING: "⏳",
    Status.PENDING: "🕓",
    Status.RUNNING: "🔄",
    Status.MANUAL: "✋",
    Status.SUCCESS: "✅",
    Status.FAILED: "❌",
    Status.CANCELED: "⛔",
    Status.SKIPPED: "⏭️",
}


SOFT_FAILED = "⚠️"


def _cell(value: str) -> str:
    """Hostile text (labels, keys, paths, forge errors) in a table cell or a line: escaped."""
    return text(value)


def hidden(upstream: Repository, target: Repository) -> bool:
    """Whether a comment on ``upstream`` must not name ``target``."""
    return hides(upstream, target)


def render(chain: Chain, runs: Sequence[Run]) -> str:
    names = private_names(chain.repository, runs)
    hidden = hidden_runs(chain.repository, runs)
    soft = quarantine.counted(runs)
    lines = [
        MARKER,
        f"**Baton** · {ICONS.get(Status(chain.status), '')} {chain.status}"
        + (f" ({soft})" if soft else "")
        + f" · commit {code(chain.head_sha[:8])} · {_cell(chain.reason)}",
        "",
    ]
    if estimate := eta.describe(eta.for_chain(chain, runs), utc=True):
        lines += [f"⏱️ {estimate}", ""]  # names no target: safe on a public project
    if chain.error:
        lines += [f"> ❌ {_cell(scrub(chain.error, names))}", ""]
    if runs:
        lines += ["| target | project | ref | status | |", "|---|---|---|---|---|"]
        for run in runs:
            lines.append(_run_row(run, run.pk in hidden, names))
    elif not chain.error:
        lines.append("Nothing to trigger for this change.")
    return truncate("\n".join(lines) + "\n", settings.BATON_MAX_REPLY_CHARS)


def _run_row(run: Run, private: bool, names: set[str]) -> str:
    status = Status(run.status)
    attempt = f" ({attempt_words(run)})" if run.attempt > 1 else ""
    indent = "↳ " * (run.depth - 1)
    shown = f"{ICONS.get(status, '')} {status.label}"
    if soft_failed(run):
        word = "quarantined" if private and run.quarantine_reason else quarantine.word(run)
        shown = f"{SOFT_FAILED} {_cell(scrub(word, names))}"
    if private:
        return f"| {indent}{PRIVATE} | — | — | {shown}{attempt} | |"
    pipeline = link("pipeline", run.web_url)
    note = f" — {_cell(scrub(run.error, names))}" if run.error else ""
    if jobs := failures.shown(run):
        note += " — " + _failed_jobs(jobs, names)
    if run.mode != "new" and run.dispatch == Run.Dispatch.SENT:
        note += " — variables not sent: a re-run keeps the pipeline's own"
    elif run.undelivered:
        inputs = ", ".join(code(name) for name in run.undelivered)
        note += f" — not delivered (the target takes no such variable): {inputs}"
    return (
        f"| {indent}{_cell(run.label or run.key)} | {_cell(run.repository.path)} | "
        f"{code(run.ref) if run.ref else 'default branch'} | {shown}{attempt}{note} | {pipeline} |"
    )


def _failed_jobs(jobs: Sequence[Failure], names: set[str]) -> str:
    """``failed: rspec (script failure) [job](…), …``: each job's (and step's) name escaped,
    the forge's link only when it is http(s)."""
    shown = []
    for job in jobs[:SUMMARY_JOBS]:
        words = _cell(scrub(job.label, names))
        shown.append(f"{words} {link('job', job.url)}".strip())
    more = f", +{len(jobs) - SUMMARY_JOBS} more" if len(jobs) > SUMMARY_JOBS else ""
    return "failed: " + ", ".join(shown) + more


def render_plan(
    change: Change,
    plan: Plan,
    targets: Sequence[tuple[PlannedRun, Repository, str, Verdict]],
    *,
    upstream: Repository,
) -> str:
    """`/baton plan`: targets, refs, variables after precedence (masked hidden), order, and
    whether the person may trigger each."""
    lines = [
        f"**Plan** for commit {code(change.head_sha[:8])}, with {_cell(change.author)}'s "
        "permissions",
        "",
        "| target | project | ref | waits for | variables | may it run? |",
        "|---|---|---|---|---|---|",
    ]
    names: set[str] = set()
    for planned, repository, _, _ in targets:
        if hidden(upstream, repository):
            names.update(n for n in (repository.path, planned.key, planned.label) if n)
    for planned, repository, problem, verdict in targets:
        waits = _cell(scrub(", ".join(planned.depends_on), names)) or "—"
        if hidden(upstream, repository):
            # Neither the key nor the reason (it names the project and the grants) is shown.
            allowed = bool(verdict) and not problem and not planned.skip
            may = "⏭️ skipped" if planned.skip else ("✅ yes" if allowed else "❌ no")
            lines.append(f"| {PRIVATE} | {PRIVATE} | — | {waits} | — | {may} |")
            continue
        if problem:
            may = f"❌ {_cell(scrub(problem, names))}"
        elif planned.skip:
            may = f"⏭️ skipped: {_cell(scrub(planned.skip, names))}"
        else:
            may = ("✅ " if verdict else "❌ ") + _cell(scrub(verdict.reason, names))
        variables = [code(f"{k}={v}") for k, v in sorted(planned.variables.items())]
        variables += [code(f"{k}={MASK}") for k in sorted(planned.masked_variables)]
        ref = code(planned.ref) if planned.ref else "default branch"
        lines.append(
            f"| {_cell(planned.key)} | {_cell(repository.path)} | {ref} | {waits} | "
            f"{' '.join(variables)} | {may} |"
        )
    if not targets:
        lines.append("| — | nothing to trigger | | | | |")
    if plan.excluded:
        lines += ["", "Left out:"]
        lines += [
            f"- {code(scrub(key, names))}: {_cell(scrub(why, names))}" for key, why in plan.excluded
        ]
    return truncate("\n".join(lines) + "\n", settings.BATON_MAX_REPLY_CHARS)
