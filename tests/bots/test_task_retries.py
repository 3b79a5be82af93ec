"""Every task that calls a forge retries through Celery (``ForgeTask``: autoretry with the one
backoff of bots/backoff.py) and gives up in words: permanent errors at once, transient ones after
BATON_MAX_FORGE_RETRIES, rate limits never."""

from __future__ import annotations

from typing import Any

import pytest
from celery.app.task import Task
from celery.exceptions import Retry
from django.conf import settings

from bots import backoff, tasks
from bots.forges.base import ForgeError


@pytest.fixture
def retries(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def retry(self: Task, *args: Any, **kw: Any) -> Retry:
        seen.append({"countdown": args[5], "max_retries": args[6]})
        raise Retry()

    monkeypatch.setattr(Task, "retry", retry)
    return seen


@pytest.fixture
def delivery(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    said: dict[str, list[str]] = {"failed": [], "noted": []}
    monkeypatch.setattr(tasks.router, "fail", lambda _id, why: said["failed"].append(why))
    monkeypatch.setattr(tasks.router, "note", lambda _id, why: said["noted"].append(why))
    return said


def _process(monkeypatch: pytest.MonkeyPatch, exc: ForgeError, retries: int) -> None:
    def process(delivery_id: int) -> None:
        raise exc

    monkeypatch.setattr(tasks.router, "process", process)
    tasks.process_delivery.push_request(retries=retries)  # type: ignore[call-arg]
    try:
        tasks.process_delivery.run(3)
    finally:
        tasks.process_delivery.pop_request()


def test_every_forge_task_retries_through_celery() -> None:
    for task in (
        tasks.process_delivery,
        tasks.mirror_chain,
        tasks.cancel_remote,
        tasks.retry_remote,
        tasks.rerun_chain,
        tasks.expand_run,
        tasks.start_for_comment,
    ):
        assert isinstance(task._get_current_object(), tasks.ForgeTask), task.name  # type: ignore[attr-defined]
        assert task.autoretry_for == (ForgeError,)
        assert task.max_retries == settings.BATON_MAX_FORGE_RETRIES
        assert task.retry_jitter is True


def test_a_transient_error_is_noted_and_retried_after_retry_after(
    monkeypatch: pytest.MonkeyPatch, retries: list, delivery: dict
) -> None:
    with pytest.raises(Retry):
        _process(monkeypatch, ForgeError("503", retry_after=30, status_code=503), 2)
    assert retries[0]["countdown"] == 30
    assert delivery == {"failed": [], "noted": ["will try again: 503"]}


def test_a_permanent_error_fails_the_delivery_in_words(
    monkeypatch: pytest.MonkeyPatch, retries: list, delivery: dict
) -> None:
    _process(monkeypatch, ForgeError("no such project", permanent=True, status_code=404), 0)
    assert retries == [] and delivery["failed"] == ["no such project"]


def test_the_cap_fails_the_delivery(
    monkeypatch: pytest.MonkeyPatch, retries: list, delivery: dict
) -> None:
    _process(monkeypatch, ForgeError("502"), settings.BATON_MAX_FORGE_RETRIES)
    assert retries == [] and delivery["failed"] == ["502"]


def test_rate_limits_are_not_capped(
    monkeypatch: pytest.MonkeyPatch, retries: list, delivery: dict
) -> None:
    with pytest.raises(Retry):
        _process(monkeypatch, ForgeError("429", retry_after=5, status_code=429), 99)
    assert retries == [{"countdown": 5, "max_retries": tasks.RATE_LIMITED_RETRIES}]


def test_one_backoff_for_tasks_and_sends() -> None:
    assert backoff.wait_for(ForgeError("x", retry_after=9000, status_code=429), 0) == 600
    assert backoff.wait_for(ForgeError("x"), 3, jitter=False) == 8
    assert backoff.wait_for(None, 20, jitter=False) == backoff.MAX_WAIT
    assert all(16 * 0.8 <= backoff.wait_for(None, 4) <= 16 * 1.2 for _ in range(50))
