"""Finding 3 of issue 9, the worker side: a delivery or run that never finishes (it froze the
worker until a time limit or a restart killed it) used to be handed out again by the sweeper
forever. Every task has time limits now, and a delivery or run is tried at most a capped number
of times before it is parked as failed with the reason in words, shown in the admin."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from bots import router, tasks
from bots.engine import triggering
from bots.events import ChangeEvent
from chains.models import Delivery, Forge, Run
from chains.status import Status
from config.celery import app
from tests import factories
from tests.conftest import load_fixture


class WorkerKilled(BaseException):
    """Stands in for a hard time limit or a restart: nothing after it runs in the process."""


def test_every_task_has_soft_and_hard_time_limits() -> None:
    ours = {name: task for name, task in app.tasks.items() if name.startswith("bots.")}
    assert "bots.tasks.process_delivery" in ours and "bots.tasks.sweep" in ours
    for name, task in ours.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard, name
        assert soft < hard, name


def test_a_sender_stops_before_its_claim_on_the_run_runs_out(settings: Any) -> None:
    assert tasks.trigger_run.time_limit < settings.BATON_TRIGGER_LEASE


@pytest.fixture
def gitlab(db: None) -> Forge:
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="https://gl.example.com",
        token="t",
        webhook_secret="s",
    )


def _delivery(forge: Forge) -> int:
    payload = load_fixture("gitlab", "merge_request__open")
    delivery_id, _ = Delivery.objects.record(
        forge, "Merge Request Hook", "poison-1", payload, handled=True
    )
    assert delivery_id is not None
    Delivery.objects.filter(pk=delivery_id).update(
        received_at=timezone.now() - timedelta(minutes=10)
    )
    return delivery_id


def test_a_poison_delivery_is_tried_at_most_the_cap_then_parked(
    gitlab: Forge, settings: Any, monkeypatch: Any
) -> None:
    settings.BATON_MAX_DELIVERY_ATTEMPTS = 3
    delivery_id = _delivery(gitlab)
    handled: list[int] = []

    def poison(forge: Forge, event: Any, delivery: Any) -> str:
        handled.append(delivery.pk)
        raise WorkerKilled

    monkeypatch.setitem(router.HANDLERS, ChangeEvent, poison)
    queued: list[int] = []
    monkeypatch.setattr(
        tasks.process_delivery, "apply_async", lambda args, **options: queued.append(args[0])
    )
    for _ in range(10):  # ten sweeps, as after ten restarts
        queued.clear()
        tasks.sweep()
        for queued_id in list(queued):
            with contextlib.suppress(WorkerKilled):
                router.process(queued_id)
    assert handled == [delivery_id] * 3
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.outcome == Delivery.Outcome.FAILED and delivery.processed_at is not None
    assert "parked after 3 attempts" in delivery.detail
    assert "BATON_MAX_DELIVERY_ATTEMPTS" in delivery.detail
    queued.clear()
    tasks.sweep()
    assert delivery_id not in queued  # the sweeper hands it out no more


def test_a_delivery_past_its_soft_time_limit_is_failed_with_the_reason(
    gitlab: Forge, monkeypatch: Any
) -> None:
    delivery_id = _delivery(gitlab)

    def slow(forge: Forge, event: Any, delivery: Any) -> str:
        raise SoftTimeLimitExceeded  # what Celery raises in the task at the soft limit

    monkeypatch.setitem(router.HANDLERS, ChangeEvent, slow)
    tasks.process_delivery.apply(args=(delivery_id,))
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.outcome == Delivery.Outcome.FAILED
    assert "took longer than" in delivery.detail
    assert "BATON_TASK_SOFT_TIME_LIMIT" in delivery.detail


def test_the_parking_reason_is_shown_in_the_admin(
    gitlab: Forge, settings: Any, monkeypatch: Any
) -> None:
    settings.BATON_MAX_DELIVERY_ATTEMPTS = 1
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    delivery_id = _delivery(gitlab)
    Delivery.objects.filter(pk=delivery_id).update(attempts=1)
    router.process(delivery_id)
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/chains/delivery/{delivery_id}/change/").content.decode()
    assert "parked after 1 attempts" in page
    listing = client.get("/admin/chains/delivery/").content.decode()
    assert "parked after 1 attempts" in listing
    # Processing it again from the admin gives it a fresh count of attempts.
    client.post(
        "/admin/chains/delivery/",
        {"action": "process_again_action", "_selected_action": [delivery_id]},
    )
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.outcome, delivery.attempts) == (Delivery.Outcome.QUEUED, 0)


def test_a_run_whose_send_never_finishes_is_parked_after_the_cap(
    gitlab: Forge, settings: Any, monkeypatch: Any
) -> None:
    settings.BATON_MAX_RUN_ATTEMPTS = 4
    chain = factories.chain(on=gitlab)
    run = factories.run(chain, "api", status=Status.QUEUED, remote_id="")
    Run.objects.filter(pk=run.pk).update(dispatch=Run.Dispatch.IDLE)
    sends: list[int] = []

    class Frozen:
        def __getattr__(self, name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                sends.append(run.pk)
                raise WorkerKilled

            return call

    monkeypatch.setattr(triggering, "forge_for", lambda record: Frozen())
    for _ in range(10):  # the sweeper hands it out again once its claim has run out
        Run.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        with contextlib.suppress(WorkerKilled):
            triggering.trigger(run.pk)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "gave up after 4 attempts" in run.error and "BATON_MAX_RUN_ATTEMPTS" in run.error
    assert len(sends) <= 4 * 2  # at most a couple of forge calls per attempt, then no more
    before = len(sends)
    triggering.trigger(run.pk)
    assert len(sends) == before
