"""A worker's claim on the deliveries it is handling, kept alive while it works.

A delivery is claimed with a lease (``Delivery.lease_until``, ``BATON_STALE_AFTER`` seconds) in
the statement that counts its attempt; one thread per worker process renews the leases of every
delivery the process is handling, every third of that time, in one UPDATE. The sweeper hands a
delivery to another worker only once its lease has run out: the worker died (the renewals stopped
with it), never while a live one still plans a large fan-out. A renewal is fenced by the attempt
number, as a run's claim is (``triggering._still_ours``): it never extends another worker's
claim. A task that runs past ``CELERY_TASK_TIME_LIMIT`` (which a prefork worker would have killed
by then) is no longer renewed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from chains.models import Delivery

log = logging.getLogger(__name__)


def lease_seconds() -> float:
    return float(settings.BATON_STALE_AFTER)


def lease_from(now: datetime) -> datetime:
    return now + timedelta(seconds=lease_seconds())


class _Renewer:
    """The deliveries this process holds, and the one thread that renews their leases."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[int, tuple[int, float]] = {}  # delivery id -> (attempt, held since)
        self.pid = 0

    def hold(self, delivery_id: int, attempt: int) -> None:
        with self.lock:
            self.held[delivery_id] = (attempt, time.monotonic())
            if self.pid != os.getpid():  # first use in this process (a prefork child too)
                self.pid = os.getpid()
                threading.Thread(target=self._loop, name="baton-leases", daemon=True).start()

    def drop(self, delivery_id: int) -> None:
        with self.lock:
            self.held.pop(delivery_id, None)

    def _loop(self) -> None:
        renewed = time.monotonic()
        while True:
            every = lease_seconds() / 3
            time.sleep(min(every, 1.0))  # read again each round: the setting may change
            if time.monotonic() - renewed < every:
                continue
            renewed = time.monotonic()
            try:
                self.renew()
            except Exception:  # the next round tries again
                log.exception("renewing the delivery leases failed")
            finally:
                connection.close()  # this thread's own; a few seconds apart, not kept open

    def renew(self) -> int:
        cutoff = time.monotonic() - settings.CELERY_TASK_TIME_LIMIT
        with self.lock:
            due = [(pk, n) for pk, (n, since) in self.held.items() if since > cutoff]
        if not due:
            return 0
        fenced = reduce(or_, (Q(pk=pk, attempts=n) for pk, n in due))
        return Delivery.objects.filter(fenced, processed_at__isnull=True).update(
            lease_until=lease_from(timezone.now())
        )


_renewer = _Renewer()


@contextmanager
def holding(delivery_id: int, attempt: int) -> Iterator[None]:
    """Keep this worker's lease on the delivery alive while the block runs. When the block
    raises (a forge error the task retries), the lease is given up at once, so the retry (or
    the sweeper) may take the delivery up; when it ends, the delivery is finished."""
    _renewer.hold(delivery_id, attempt)
    try:
        yield
    except BaseException:
        Delivery.objects.filter(pk=delivery_id, attempts=attempt).update(lease_until=None)
        raise
    finally:
        _renewer.drop(delivery_id)


def renew_now() -> int:
    """Renew every lease this process holds (what its thread does every third of a lease)."""
    return _renewer.renew()
