"""A delivery is claimed with a lease while a worker handles it (bots/leases.py): the sweeper
hands it to another worker only once that lease has run out (the worker died), never while a
live worker still plans it, however long that takes."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from bots import leases
from chains.models import Chain, Delivery
from tests.engine.conftest import Engine
from tests.engine.test_tasks import _delivery
from tests.fakes.tasks import deliver


def _handed_out(engine: Engine, delivery: Delivery) -> bool:
    engine.kicks.clear()
    deliver("sweep")
    return ("process_delivery", (delivery.pk,)) in [(k.name, k.args) for k in engine.kicks.pending]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_still_being_planned_is_not_handed_to_a_second_worker(
    engine: Engine, settings: Any, monkeypatch: Any
) -> None:
    settings.BATON_STALE_AFTER = 1.0  # the lease: renewed every third of it while planning runs
    delivery = _delivery(engine)
    reading, go_on = threading.Event(), threading.Event()
    reads: list[str] = []
    read_file = engine.fake.read_file

    def slow_read(project: str, path: str, ref: str) -> str | None:
        reads.append(path)
        reading.set()
        assert go_on.wait(30)
        return read_file(project, path, ref)

    monkeypatch.setattr(engine.fake, "read_file", slow_read)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            deliver("process_delivery", delivery.pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=worker)
    first.start()
    try:
        assert reading.wait(30)
        an_hour_ago = timezone.now() - timedelta(hours=1)
        Delivery.objects.filter(pk=delivery.pk).update(received_at=an_hour_ago)
        time.sleep(2.5)  # more than two leases: only the renewals keep it
        assert not _handed_out(engine, delivery)
        # A second delivery of the task (the sweeper's of before, a redelivery) does nothing.
        deliver("process_delivery", delivery.pk)
        assert reads == [".baton.yml"]
        taken = Delivery.objects.get(pk=delivery.pk)
        assert (taken.attempts, taken.detail) == (1, "an attempt started; it has not finished")
    finally:
        go_on.set()
        first.join(30)
    assert errors == []
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts, delivery.lease_until) == (
        Delivery.Outcome.PROCESSED,
        1,
        None,
    )
    assert Chain.objects.filter(delivery=delivery).count() == 1
    assert not _handed_out(engine, delivery)


def test_a_delivery_whose_worker_died_is_handed_on_once_its_lease_runs_out(
    engine: Engine,
) -> None:
    delivery = _delivery(engine)
    now = timezone.now()
    # A worker took it up an hour after it came, and died: its lease was not renewed.
    Delivery.objects.filter(pk=delivery.pk).update(
        received_at=now - timedelta(hours=1), attempts=1, lease_until=now + timedelta(seconds=30)
    )
    assert not _handed_out(engine, delivery)
    engine.deliver("process_delivery", delivery.pk)
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1  # not taken while the lease holds
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=now - timedelta(seconds=1))
    assert _handed_out(engine, delivery)
    engine.deliver("process_delivery", delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts) == (Delivery.Outcome.PROCESSED, 2)


def test_a_renewal_never_extends_another_attempts_lease(engine: Engine) -> None:
    delivery = _delivery(engine)
    soon = timezone.now() + timedelta(seconds=1)
    Delivery.objects.filter(pk=delivery.pk).update(attempts=2, lease_until=soon)
    with leases.holding(delivery.pk, 1):  # the first attempt's worker, still running
        assert leases.renew_now() == 0
    with leases.holding(delivery.pk, 2):
        assert leases.renew_now() == 1
    assert Delivery.objects.get(pk=delivery.pk).lease_until > soon  # type: ignore[operator]


def test_a_retried_delivery_gives_its_lease_up(engine: Engine) -> None:
    from tests.fakes.forge import transient

    delivery = _delivery(engine)
    engine.fake.fail("get_change", transient())
    assert engine.deliver("process_delivery", delivery.pk).retried
    delivery.refresh_from_db()
    assert delivery.lease_until is None and delivery.processed_at is None
