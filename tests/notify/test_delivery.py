"""Sending through Apprise: the message reaches the service, a failed try is retried and then
recorded with its reason, and the channel's secrets never appear in that reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from django.test import override_settings

from notify import channels
from notify.metrics import NOTIFICATIONS
from notify.models import Channel, Event, Notification
from notify.tasks import Undelivered, deliver_notification
from tests import factories as f

SECRET_URL = "json://bot:hunter22@chat.example/hooks/T0KEN-abcdef?key=s3cr3tkey"
HOOK = "http://chat.example/hooks/T0KEN-abcdef"


@pytest.mark.parametrize(
    "text",
    [
        f"Connection to {SECRET_URL} failed",
        "HTTP 401 from http://bot:hunter22@chat.example/hooks/T0KEN-abcdef?key=s3cr3tkey",
        "bad token T0KEN-abcdef, password hunter22, key s3cr3tkey",
    ],
)
def test_errors_are_scrubbed_of_every_secret_part_of_the_url(text: str) -> None:
    clean = channels.scrubbed(text, SECRET_URL)
    for secret in ("hunter22", "T0KEN-abcdef", "s3cr3tkey", "bot:"):
        assert secret not in clean
    assert channels.MASK in clean


def test_a_url_apprise_does_not_know_is_a_permanent_failure() -> None:
    result = channels.send("nosuchservice://x/y", "t", "b")
    assert (result.ok, result.permanent) == (False, True)
    assert "nosuchservice://x" not in result.error


@responses.activate
def test_a_json_webhook_receives_title_and_message() -> None:
    responses.add(responses.POST, HOOK, json={}, status=200)
    result = channels.send(SECRET_URL, "Chain failed: acme/app !1", "line one\nline two")
    assert result.ok
    sent = json.loads(responses.calls[0].request.body or b"")
    assert (sent["title"], sent["message"]) == ("Chain failed: acme/app !1", "line one\nline two")


@responses.activate
def test_a_refusal_is_told_without_the_secrets() -> None:
    responses.add(responses.POST, HOOK, body="nope", status=403)
    result = channels.send(SECRET_URL, "t", "b")
    assert not result.ok and not result.permanent
    assert result.error
    assert "hunter22" not in result.error and "T0KEN-abcdef" not in result.error


def _row() -> Notification:
    chain = f.chain("acme/app")
    to, _ = Channel.objects.get_or_create(name="chat", defaults={"url": SECRET_URL})
    return Notification.objects.create(
        chain=chain, event=Event.CHAIN_FAILED, channel=to, title="t", body="b"
    )


def _count(outcome: str) -> float:
    return NOTIFICATIONS.labels(Event.CHAIN_FAILED, outcome)._value.get()


@pytest.mark.django_db
@responses.activate
def test_a_delivery_is_sent_once_and_counted() -> None:
    responses.add(responses.POST, HOOK, json={}, status=200)
    row = _row()
    before = _count("sent")
    deliver_notification(row.pk)
    deliver_notification(row.pk)  # a repeated task: nothing more
    row.refresh_from_db()
    assert (row.outcome, row.attempts, row.error) == ("sent", 1, "")
    assert row.sent_at is not None
    assert len(responses.calls) == 1
    assert _count("sent") == before + 1


@pytest.mark.django_db
@responses.activate
def test_a_failed_try_is_retried_then_given_up_with_its_reason() -> None:
    responses.add(responses.POST, HOOK, body=requests.ConnectionError("refused"))
    row = _row()
    retries = _count("retry")
    with pytest.raises(Undelivered):  # called directly, Celery's retry raises the error
        deliver_notification(row.pk)
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("pending", 1)
    assert _count("retry") == retries + 1
    with override_settings(BATON_NOTIFY_RETRIES=0):
        deliver_notification(row.pk)
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("failed", 2)
    assert row.error and "hunter22" not in row.error and "T0KEN-abcdef" not in row.error


def test_the_task_retries_with_backoff_and_jitter() -> None:
    task: Any = deliver_notification
    assert task.autoretry_for == (Undelivered,)
    assert task.retry_backoff and task.retry_jitter and task.retry_backoff_max == 600


@pytest.mark.django_db
def test_the_sweep_hands_on_rows_never_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from notify import tasks

    handed: list[int] = []
    monkeypatch.setattr(tasks.deliver_notification, "delay", handed.append)
    old, new = _row(), _row()
    Notification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert tasks.sweep_notifications() == 1
    assert handed == [old.pk] and new.pk not in handed
