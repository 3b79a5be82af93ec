"""One status vocabulary for runs and chains, and the algebra that folds runs into a chain status.

Forge adapters map their own words onto these (see the tables in ``bots/forges``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models


class Status(models.TextChoices):
    QUEUED = "queued", "queued"  # planned, not yet sent to the forge
    WAITING = "waiting", "waiting"  # waiting for its turn (dependencies, rate limit)
    PENDING = "pending", "pending"  # the forge has it and has not started it
    RUNNING = "running", "running"
    MANUAL = "manual", "manual"  # blocked on a manual action in the target
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"
    CANCELED = "canceled", "canceled"
    SKIPPED = "skipped", "skipped"


FINISHED = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.SKIPPED})
ACTIVE = frozenset({Status.QUEUED, Status.WAITING, Status.PENDING, Status.RUNNING, Status.MANUAL})
NOT_YET_SENT = frozenset({Status.QUEUED, Status.WAITING})


def is_finished(status: str) -> bool:
    return status in FINISHED


def fold(statuses: Iterable[str]) -> Status:
    """The status of a whole chain from the (upstream-visible) statuses of its runs.

    Failure wins once nothing else is moving; anything still moving keeps the chain running;
    an empty chain has succeeded (nothing to wait for).
    """
    seen = set(statuses)
    if not seen:
        return Status.SUCCESS
    if seen & {Status.RUNNING, Status.PENDING, Status.MANUAL}:
        return Status.RUNNING
    if seen & {Status.QUEUED, Status.WAITING}:
        return Status.PENDING
    if Status.FAILED in seen:
        return Status.FAILED
    if Status.CANCELED in seen:
        return Status.CANCELED
    if seen <= {Status.SKIPPED}:
        return Status.SKIPPED
    return Status.SUCCESS


def upstream_view(status: str, *, strategy: str, sent: bool, soft_fail: bool = False) -> Status:
    """What the upstream change shows for one run.

    depend: waits for the run and takes its final result (a run blocked on a manual action
    shows as still running, as GitLab's ``strategy: depend`` does);
    mirror: follows the run live, manual and blocked states included;
    async: success as soon as the forge has accepted the run, unless sending it failed.
    A soft-failing run that fails shows as success: it never fails the chain.
    """
    if strategy == "async":
        if sent and status != Status.CANCELED:
            return Status.SUCCESS
        if status in FINISHED:
            return Status(status)
        return Status.PENDING
    if soft_fail and status == Status.FAILED:
        return Status.SUCCESS
    if strategy == "depend" and status == Status.MANUAL:
        return Status.RUNNING
    return Status(status)
