"""Rate-limit-aware pacing per forge token, shared across processes through the database.

A caller reserves a send time against one or more budgets (spacing between requests, a cap per
minute); the reservation is the earliest moment all of them allow. Nothing is ever dropped: work
that must wait is told until when.
"""

from __future__ import annotations

import time

from django.db import transaction

from bots.forges.base import Budget
from chains.models import RateBudget, save_each

WINDOW = 60.0


def _rows(keys: list[str]) -> dict[str, RateBudget]:
    """The budgets' rows, locked (in key order); the missing ones are created first, in one
    statement (``ON CONFLICT DO NOTHING``: created by someone else meanwhile is fine)."""
    rows = _locked(keys)
    missing = [key for key in keys if key not in rows]
    if missing:
        RateBudget.objects.bulk_create(
            [RateBudget(key=key) for key in missing], ignore_conflicts=True
        )
        rows = _locked(keys)
    return rows


def _locked(keys: list[str]) -> dict[str, RateBudget]:
    rows = RateBudget.objects.select_for_update().filter(key__in=keys).order_by("key")
    return {row.key: row for row in rows}


def earliest(row: RateBudget, budget: Budget, start: float) -> float:
    """The earliest time ≥ start at which ``budget`` allows one more request."""
    at = max(start, row.blocked_until)
    slots = sorted(row.slots)
    if budget.spacing and slots:
        at = max(at, slots[-1] + budget.spacing)
    if budget.per_minute:
        while True:
            inside = [s for s in slots if at - WINDOW < s <= at]
            if len(inside) < budget.per_minute:
                break
            at = inside[len(inside) - budget.per_minute] + WINDOW
    return at


def reserve(budgets: list[Budget], *, now: float | None = None) -> float:
    """Reserve one request under every budget; returns the Unix time it may be sent."""
    if not budgets:
        return time.time() if now is None else now
    now = time.time() if now is None else now
    with transaction.atomic():
        rows = _rows(sorted({b.key for b in budgets}))
        at = now
        # Each budget may push the time later; go round until all agree.
        for _ in range(len(budgets) + 1):
            later = max(earliest(rows[b.key], b, at) for b in budgets)
            if later == at:
                break
            at = later
        for row in rows.values():
            row.slots = [s for s in row.slots if s > now - WINDOW] + [at]
        save_each(list(rows.values()), ["slots"])
    return at


def reserve_many(requests: list[list[Budget]], *, now: float | None = None) -> list[float]:
    """``reserve`` for several requests in one transaction (a fan-out's chunk), in order: each
    request's time as ``reserve`` would have given it after the ones before."""
    now = time.time() if now is None else now
    keys = sorted({b.key for budgets in requests for b in budgets})
    if not keys:
        return [now for _ in requests]
    times: list[float] = []
    with transaction.atomic():
        rows = _rows(keys)
        for budgets in requests:
            at = now
            for _ in range(len(budgets) + 1):
                later = max((earliest(rows[b.key], b, at) for b in budgets), default=at)
                if later == at:
                    break
                at = later
            for key in {b.key for b in budgets}:
                row = rows[key]
                row.slots = [s for s in row.slots if s > now - WINDOW] + [at]
            times.append(at)
        save_each(list(rows.values()), ["slots"])
    return times


def block(budgets: list[Budget], seconds: float) -> None:
    """The forge said to back off: nothing under these budgets is sent for ``seconds``."""
    until = time.time() + seconds
    with transaction.atomic():
        for row in _rows(sorted({b.key for b in budgets})).values():
            if row.blocked_until < until:
                row.blocked_until = until
                row.save(update_fields=["blocked_until"])


def gate(budgets: list[Budget]) -> None:
    """Just before sending: let the request go only once the spacing since the last request
    that actually went has passed. A reservation says when work may start; a task that starts
    late would otherwise close up on the next one."""
    spaced = sorted({b.key: b for b in budgets if b.spacing}.values(), key=lambda b: b.key)
    if not spaced:
        return
    with transaction.atomic():
        rows = _rows([b.key for b in spaced])
        delay = max(rows[b.key].last_sent + b.spacing - time.time() for b in spaced)
        if delay > 0:
            time.sleep(delay)  # holding the rows: the next sender waits behind us
        now = time.time()
        for row in rows.values():
            row.last_sent = now
            row.save(update_fields=["last_sent"])


def wait(budgets: list[Budget]) -> None:
    """Reserve, sleep until the reservation, and pass the gate (work that must go in this task)."""
    delay = reserve(budgets) - time.time()
    if delay > 0:
        time.sleep(delay)
    gate(budgets)
