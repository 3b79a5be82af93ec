"""Intake never answers 5xx to a well-signed delivery: with the broker down the delivery is
stored and answered 202, and the sweeper enqueues it later (forges count 5xx toward disabling
the hook)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from chains.models import Delivery, Forge
from config.celery import app
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def forget_forges() -> None:
    from django.core.cache import caches

    caches["local"].clear()


@pytest.fixture
def broker_down() -> Iterator[None]:
    # Publishing uses the write URL when one is set; the pool holds connections to the old one.
    conf: Any = app.conf  # its URLs are read-only in the type stubs
    celery: Any = app
    before = conf.broker_write_url
    conf.broker_write_url = CLOSED_PORT_BROKER
    celery._pool = None
    try:
        yield
    finally:
        conf.broker_write_url = before
        celery._pool = None


@pytest.fixture
def forge() -> Forge:
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="glpat-secret-token",
        webhook_secret="hook-secret",
    )


def test_broker_down_still_answers_202_and_keeps_the_delivery(
    client: Client, forge: Forge, broker_down: None
) -> None:
    body = json.dumps(load_fixture("gitlab", "merge_request__open"))
    started = time.monotonic()
    response = client.post(
        "/hooks/gl/",
        data=body,
        content_type="application/json",
        headers={
            "X-Gitlab-Token": "hook-secret",
            "X-Gitlab-Event": "Merge Request Hook",
            "Idempotency-Key": "broker-down-1",
        },
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "accepted"
    assert time.monotonic() - started < 5  # no publish retries while the forge waits
    delivery = Delivery.objects.get(dedupe_key="broker-down-1")
    # Still queued and unprocessed: the sweeper picks up exactly these.
    assert delivery.processed_at is None
    assert delivery.outcome == Delivery.Outcome.QUEUED


def test_the_sweeper_enqueues_what_the_broker_missed(
    client: Client, forge: Forge, broker_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bots import tasks

    client.post(
        "/hooks/gl/",
        data=json.dumps(load_fixture("gitlab", "merge_request__open")),
        content_type="application/json",
        headers={
            "X-Gitlab-Token": "hook-secret",
            "X-Gitlab-Event": "Merge Request Hook",
            "Idempotency-Key": "broker-down-2",
        },
    )
    delivery = Delivery.objects.get(dedupe_key="broker-down-2")
    Delivery.objects.filter(pk=delivery.pk).update(
        received_at=delivery.received_at.replace(year=2000)
    )
    sent: list[int] = []
    monkeypatch.setattr(
        tasks.process_delivery, "apply_async", lambda args, **options: sent.append(args[0])
    )
    tasks.sweep()
    assert delivery.pk in sent
