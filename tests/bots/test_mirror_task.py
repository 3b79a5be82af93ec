"""The mirror task waits as long as the forge asks and gives up after the retry cap.

The retry itself is Celery's (``autoretry_for``); what is pinned here is the countdown and the cap
Baton hands it (bots/tasks.py ``ForgeTask``, bots/backoff.py)."""

from __future__ import annotations

from typing import Any

import pytest
from celery.app.task import Task
from celery.exceptions import Retry
from django.conf import settings

from bots import tasks
from bots.forges.base import ForgeError


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """mirroring.mirror raises the error set by the test; retries are recorded, not queued."""
    retries: list[dict[str, Any]] = []

    def retry(self: Task, *args: Any, countdown: float | None = None, **kw: Any) -> Retry:
        # Celery's Task.retry, as Baton's ForgeTask.retry calls it: (args, kwargs, exc, throw,
        # eta, countdown, max_retries)
        retries.append({"countdown": args[5] if len(args) > 5 else countdown})
        raise Retry()

    monkeypatch.setattr(Task, "retry", retry)
    monkeypatch.setattr(tasks.mirror_chain, "retry_jitter", False)
    monkeypatch.setattr(
        tasks.mirroring, "request_mirror", lambda *a, **k: retries.append({"re": a})
    )
    return retries


def _run(monkeypatch: pytest.MonkeyPatch, exc: ForgeError, retries: int) -> None:
    def mirror(chain_id: int) -> bool:
        raise exc

    monkeypatch.setattr(tasks.mirroring, "mirror", mirror)
    tasks.mirror_chain.push_request(retries=retries)  # type: ignore[call-arg]
    try:
        tasks.mirror_chain.run(7)
    finally:
        tasks.mirror_chain.pop_request()


def test_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch, failing: list) -> None:
    with pytest.raises(Retry):
        _run(monkeypatch, ForgeError("429", retry_after=42, status_code=429), 0)
    assert failing == [{"countdown": 42}]


def test_other_errors_back_off(monkeypatch: pytest.MonkeyPatch, failing: list) -> None:
    with pytest.raises(Retry):
        _run(monkeypatch, ForgeError("502"), 3)
    assert failing == [{"countdown": 8.0}]  # not every 0.2 s


def test_backoff_is_jittered(monkeypatch: pytest.MonkeyPatch, failing: list) -> None:
    monkeypatch.setattr(tasks.mirror_chain, "retry_jitter", True)
    for _ in range(20):
        with pytest.raises(Retry):
            _run(monkeypatch, ForgeError("502"), 3)
    assert all(8 * 0.8 <= r["countdown"] <= 8 * 1.2 for r in failing)  # 2³ s, ±20 %
    assert len({r["countdown"] for r in failing}) > 1  # not all at once


def test_the_cap_ends_retries(monkeypatch: pytest.MonkeyPatch, failing: list) -> None:
    _run(monkeypatch, ForgeError("502"), settings.BATON_MAX_FORGE_RETRIES)
    assert failing == []  # given up; no re-enqueue either


def test_rate_limits_wait_their_turn_past_the_cap(
    monkeypatch: pytest.MonkeyPatch, failing: list
) -> None:
    with pytest.raises(Retry):
        _run(monkeypatch, ForgeError("429", retry_after=5, status_code=429), 99)
    assert failing == [{"countdown": 5}]


def test_permanent_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch, failing: list) -> None:
    _run(monkeypatch, ForgeError("404", permanent=True, status_code=404), 0)
    assert failing == []
