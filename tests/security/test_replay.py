"""The same event re-sent under a new idempotency key (a project hook and a group hook, or a
replay by someone holding the webhook secret) started a new chain and triggered everything
again. A chain for the same change, commit and action within BATON_REPEAT_WINDOW is now a
repeat, checked under a PostgreSQL lock in the transaction that creates the chain, so that it
holds across processes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import responses
from django.db import connection
from django.test import Client
from django.utils import timezone

from bots import router
from bots.engine import planning
from chains.models import Chain, Delivery
from tests.security.change_fakes import PEOPLE, deliver, fake_change, gitlab_forge, mr_hook, person

PROD = "downstream:\n  - {key: prod, project: acme/prod}\n"


def _setup() -> None:
    forge = gitlab_forge()
    person(forge, "rita", "acme/*")


@pytest.mark.django_db
@responses.activate
def test_a_second_hook_with_the_same_event_starts_no_second_chain(client: Client) -> None:
    _setup()
    fake_change("rita", config=PROD)
    payload = mr_hook("open", actor="rita", author_id=PEOPLE["rita"])
    first = deliver(client, payload, "project-hook-key", "Merge Request Hook")
    second = deliver(client, payload, "group-hook-key", "Merge Request Hook")
    router.process(first.pk)
    router.process(second.pk)
    chain = Chain.objects.get()
    assert chain.delivery_id == first.pk
    second.refresh_from_db()
    assert second.detail == f"a repeat of chain {chain.pk} (same change, commit and action)"
    # The repeat cost no forge read: the first made one read of the change, one of the file and
    # one of the target project Baton had not seen before.
    assert [str(c.request.url).split("/api/v4/", 1)[1].split("?")[0] for c in responses.calls] == [
        "projects/acme%2Fapp/merge_requests/7",
        "projects/acme%2Fapp/repository/files/.baton.yml/raw",
        "projects/acme%2Fprod",
    ]


@pytest.mark.django_db
@responses.activate
def test_another_action_or_a_later_repeat_does_start_a_chain(client: Client, settings: Any) -> None:
    _setup()
    fake_change("rita", config=PROD)
    payload = mr_hook("open", actor="rita", author_id=PEOPLE["rita"])
    router.process(deliver(client, payload, "k1", "Merge Request Hook").pk)
    reopened = mr_hook("reopen", actor="rita", author_id=PEOPLE["rita"])
    router.process(deliver(client, reopened, "k2", "Merge Request Hook").pk)
    assert Chain.objects.count() == 2
    settings.BATON_REPEAT_WINDOW = 600
    Chain.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    # A reopen after the window is a new event (a change is opened only once: an "opened"
    # replayed later is always a repeat, tests/security/test_redteam_replay.py).
    router.process(deliver(client, reopened, "k3", "Merge Request Hook").pk)
    assert Chain.objects.count() == 3


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_repeats_processed_at_once_in_two_workers_make_one_chain(client: Client) -> None:
    _setup()
    fake_change("rita", config=PROD)
    payload = mr_hook("open", actor="rita", author_id=PEOPLE["rita"])
    # Both workers get past the first (unlocked) look before either creates its chain.
    both_planned = threading.Barrier(2, timeout=20)
    plan_change = planning.plan_change

    def plan_together(*args: Any, **kwargs: Any) -> Any:
        both_planned.wait()
        return plan_change(*args, **kwargs)

    errors: list[BaseException] = []

    def work(delivery: Delivery) -> None:
        try:
            router.process(delivery.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with (
        mock.patch.object(planning, "plan_change", plan_together),
        mock.patch("bots.tasks.trigger_run.apply_async"),
        mock.patch("bots.tasks.mirror_chain.apply_async"),
        mock.patch("bots.tasks.process_delivery.apply_async"),
    ):
        deliveries = [deliver(client, payload, f"k{i}", "Merge Request Hook") for i in (1, 2)]
        threads = [threading.Thread(target=work, args=(d,)) for d in deliveries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors
    assert Chain.objects.count() == 1
    details = sorted(Delivery.objects.values_list("detail", flat=True))
    assert details[0].startswith("a repeat of chain")
