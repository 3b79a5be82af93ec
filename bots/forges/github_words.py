"""GitHub's words for a workflow run's state, as Baton's statuses, and its timestamps: what
webhook intake (bots/inbound/github.py) and the adapter (github.py) both read, without the SDK."""

from __future__ import annotations

from datetime import datetime

from chains.status import Status

# GitHub workflow run (status, conclusion) -> Baton status.
RUN_STATUS: dict[str, Status] = {
    "requested": Status.PENDING,
    "queued": Status.PENDING,
    "pending": Status.PENDING,
    "waiting": Status.MANUAL,
    "in_progress": Status.RUNNING,
}
RUN_CONCLUSION: dict[str, Status] = {
    "success": Status.SUCCESS,
    "neutral": Status.SUCCESS,
    "failure": Status.FAILED,
    "timed_out": Status.FAILED,
    "startup_failure": Status.FAILED,
    "stale": Status.FAILED,
    "cancelled": Status.CANCELED,
    "skipped": Status.SKIPPED,
    "action_required": Status.MANUAL,
}


def run_status(status: str, conclusion: str | None) -> Status:
    if status == "completed":
        return RUN_CONCLUSION.get(conclusion or "", Status.FAILED)
    return RUN_STATUS.get(status, Status.PENDING)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


__all__ = ["RUN_CONCLUSION", "RUN_STATUS", "parse_time", "run_status"]
