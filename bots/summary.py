"""The one summary comment Baton keeps on each change, edited in place."""

from __future__ import annotations

from collections.abc import Sequence

from chains.models import Chain, Run
from chains.status import Status

MARKER = "<!-- baton:summary -->"

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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def render(chain: Chain, runs: Sequence[Run]) -> str:
    lines = [
        MARKER,
        f"**Baton** · {ICONS.get(Status(chain.status), '')} {chain.status} · "
        f"commit `{chain.head_sha[:8]}` · {chain.reason}",
        "",
    ]
    if chain.error:
        lines += [f"> ❌ {_cell(chain.error)}", ""]
    if runs:
        lines += ["| target | project | ref | status | |", "|---|---|---|---|---|"]
        for run in runs:
            status = Status(run.status)
            link = f"[pipeline]({run.web_url})" if run.web_url else ""
            note = f" — {_cell(run.error)}" if run.error else ""
            if run.undelivered:
                note += f" — not delivered (no such input): {', '.join(run.undelivered)}"
            attempt = f" (attempt {run.attempt})" if run.attempt > 1 else ""
            lines.append(
                f"| {_cell(run.label or run.key)} | {_cell(run.repository.path)} | "
                f"`{_cell(run.ref) or 'default branch'}` | {ICONS.get(status, '')} "
                f"{status.label}{attempt}{note} | {link} |"
            )
    elif not chain.error:
        lines.append("Nothing to trigger for this change.")
    return "\n".join(lines) + "\n"
