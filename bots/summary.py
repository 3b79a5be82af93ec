"""What Baton writes on a change: the summary comment (edited in place) and `/baton plan`.

On a public project, a downstream project that is not public is written as "a private project":
no name, ref, variables or link.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from bots.markdown import code, link, text, truncate
from chains.models import Chain, Repository, Run
from chains.planner import Change, Plan, PlannedRun
from chains.policy import Verdict
from chains.status import Status

MARKER = "<!-- baton:summary -->"
PRIVATE = "a private project"
MASK = "••••"

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


def _cell(value: str) -> str:
    """Hostile text (labels, keys, paths, forge errors) in a table cell or a line: escaped."""
    return text(value)


def hidden(upstream: Repository, target: Repository) -> bool:
    """Whether a comment on ``upstream`` must not name ``target``."""
    public = Repository.Visibility.PUBLIC
    return upstream.visibility == public and target.visibility != public


def render(chain: Chain, runs: Sequence[Run]) -> str:
    lines = [
        MARKER,
        f"**Baton** · {ICONS.get(Status(chain.status), '')} {chain.status} · "
        f"commit {code(chain.head_sha[:8])} · {_cell(chain.reason)}",
        "",
    ]
    if chain.error:
        lines += [f"> ❌ {_cell(chain.error)}", ""]
    if runs:
        lines += ["| target | project | ref | status | |", "|---|---|---|---|---|"]
        for run in runs:
            lines.append(_run_row(chain.repository, run))
    elif not chain.error:
        lines.append("Nothing to trigger for this change.")
    return truncate("\n".join(lines) + "\n", settings.BATON_MAX_REPLY_CHARS)


def _run_row(upstream: Repository, run: Run) -> str:
    status = Status(run.status)
    attempt = f" (attempt {run.attempt})" if run.attempt > 1 else ""
    indent = "↳ " * (run.depth - 1)
    if hidden(upstream, run.repository):
        return f"| {indent}{PRIVATE} | — | — | {ICONS.get(status, '')} {status.label}{attempt} | |"
    pipeline = link("pipeline", run.web_url)
    note = f" — {_cell(run.error)}" if run.error else ""
    if run.undelivered:
        names = ", ".join(code(name) for name in run.undelivered)
        note += f" — not delivered (no such input): {names}"
    return (
        f"| {indent}{_cell(run.label or run.key)} | {_cell(run.repository.path)} | "
        f"{code(run.ref) if run.ref else 'default branch'} | {ICONS.get(status, '')} "
        f"{status.label}{attempt}{note} | {pipeline} |"
    )


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
    for planned, repository, problem, verdict in targets:
        waits = _cell(", ".join(planned.depends_on)) or "—"
        if problem:
            may = f"❌ {_cell(problem)}"
        elif planned.skip:
            may = f"⏭️ skipped: {_cell(planned.skip)}"
        else:
            may = ("✅ " if verdict else "❌ ") + _cell(verdict.reason)
        if hidden(upstream, repository):
            lines.append(f"| {_cell(planned.key)} | {PRIVATE} | — | {waits} | — | {may} |")
            continue
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
        lines += [f"- {code(key)}: {_cell(why)}" for key, why in plan.excluded]
    return truncate("\n".join(lines) + "\n", settings.BATON_MAX_REPLY_CHARS)
