"""One way to write the audit log."""

from __future__ import annotations

from typing import Any

from chains.models import AuditEvent, Chain, Run


def record(action: str, **fields: Any) -> AuditEvent:
    """Write one audit event now (``fields``: those of ``event``)."""
    made = event(action, **fields)
    made.save()
    return made


def record_all(events: list[AuditEvent]) -> None:
    """Write events made by ``event`` in one statement (a fan-out's triggers)."""
    AuditEvent.objects.bulk_create(events)


def event(
    action: str,
    *,
    actor: str,
    surface: str,
    chain: Chain | None = None,
    run: Run | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
    user: Any = None,
    remote_addr: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit event not yet written: ``record`` writes one, ``record_all`` several."""
    return AuditEvent(
        action=action,
        actor=actor,
        surface=surface,
        chain=chain or (run.chain if run is not None else None),
        run=run,
        target=target,
        detail=detail or {},
        user=user if getattr(user, "is_authenticated", False) else None,
        remote_addr=remote_addr,
        before=before,
        after=after,
    )
