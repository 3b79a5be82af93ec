"""GitLab's words for a pipeline's state, as Baton's statuses, and its timestamps: what webhook
intake (bots/inbound/gitlab.py) and the adapter (gitlab.py) both read, without the SDK."""

from __future__ import annotations

from datetime import datetime

from chains.status import Status

# GitLab pipeline status -> Baton status.
PIPELINE_STATUS: dict[str, Status] = {
    "created": Status.PENDING,
    "waiting_for_resource": Status.PENDING,
    "preparing": Status.PENDING,
    "pending": Status.PENDING,
    "scheduled": Status.PENDING,
    "running": Status.RUNNING,
    "canceling": Status.RUNNING,
    "manual": Status.MANUAL,
    "success": Status.SUCCESS,
    "failed": Status.FAILED,
    "canceled": Status.CANCELED,
    "skipped": Status.SKIPPED,
}


def pipeline_status(raw: str) -> Status:
    return PIPELINE_STATUS.get(raw, Status.PENDING)


def parse_time(value: str | None) -> datetime | None:
    """GitLab writes ISO 8601 in the API and ``2026-01-16 05:56:25 UTC`` in webhooks."""
    if not value:
        return None
    text = value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
