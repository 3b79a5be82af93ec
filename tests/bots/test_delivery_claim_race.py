"""Workers racing for one delivery (the sweeper's enqueue and the webhook's, a redelivery): on
PostgreSQL exactly one takes it, an UPDATE that waited behind another's claim finds it leased,
and a delivery out of attempts is parked once, never taken."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from bots import router
from chains.models import Delivery
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("services")]


def _delivery(
    attempts: int = 0, lease_until: datetime | None = None, processed: bool = False
) -> int:
    key = f"k{time.monotonic_ns()}"
    pk, _ = Delivery.objects.record(factories.forge(), "Pipeline Hook", key, {}, handled=True)
    assert pk is not None
    Delivery.objects.filter(pk=pk).update(
        attempts=attempts,
        lease_until=lease_until,
        processed_at=timezone.now() if processed else None,
    )
    return pk


def _race(pk: int, workers: int = 8) -> list[Delivery]:
    barrier, taken = threading.Barrier(workers), []

    def work() -> None:
        try:
            barrier.wait(10)
            taken.append(router._claim(pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return [delivery for delivery in taken if delivery is not None]


@pytest.mark.parametrize("expired", [False, True])
def test_one_of_many_racing_workers_takes_it(expired: bool) -> None:
    pk = _delivery(lease_until=timezone.now() - timedelta(seconds=5) if expired else None)
    [taken] = _race(pk)
    assert taken.attempts == 1
    assert Delivery.objects.get(pk=pk).attempts == 1


def test_a_claim_that_waited_behind_another_finds_it_leased() -> None:
    pk = _delivery(lease_until=timezone.now() - timedelta(seconds=5))
    locked, go_on = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                Delivery.objects.filter(pk=pk).update(
                    attempts=F("attempts") + 1, lease_until=timezone.now() + timedelta(seconds=60)
                )
                locked.set()
                go_on.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert locked.wait(10)
    threading.Timer(0.5, go_on.set).start()
    assert router._claim(pk) is None  # waited for the first claim's commit, then saw its lease
    thread.join(10)
    assert Delivery.objects.get(pk=pk).attempts == 1


def test_spent_live_and_processed_deliveries_are_not_taken() -> None:
    cap = settings.BATON_MAX_DELIVERY_ATTEMPTS
    live = _delivery(attempts=cap, lease_until=timezone.now() + timedelta(seconds=60))
    assert router._claim(live) is None
    assert Delivery.objects.get(pk=live).processed_at is None  # its last attempt still runs
    spent = _delivery(attempts=cap, lease_until=timezone.now() - timedelta(seconds=1))
    assert _race(spent) == []
    parked = Delivery.objects.get(pk=spent)
    assert (parked.outcome, parked.attempts) == (Delivery.Outcome.FAILED, cap)
    done = _delivery(processed=True)
    assert router._claim(done) is None
    assert Delivery.objects.get(pk=done).attempts == 0
