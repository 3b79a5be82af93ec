"""A Celery worker keeps its PostgreSQL connection from task to task (Celery's Django fix-up
would otherwise open a new one for every task: a backend process forked each time), and still
drops one that is too old or broken, by Django's own rule, before a task starts."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup  # type: ignore[attr-defined]
from django.db import connection

from config import celery as celery_config


def test_the_worker_fixup_does_not_close_connections_after_each_task() -> None:
    fixup = DjangoWorkerFixup(celery_config.app)
    assert fixup.db_reuse_max and fixup.db_reuse_max >= 1000
    calls: list[str] = []
    fixup._close_database = lambda: calls.append("closed")  # type: ignore[method-assign]
    for _ in range(10):
        fixup.close_database()
    assert calls == []


@pytest.mark.django_db(transaction=True)
def test_a_connection_past_its_age_is_closed_before_a_task(settings: object) -> None:
    connection.ensure_connection()
    assert connection.connection is not None
    worker_task = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    celery_config._fresh_enough_connections(sender=worker_task)
    assert connection.connection is not None  # young enough: kept
    connection.close_at = time.monotonic() - 1
    celery_config._fresh_enough_connections(sender=worker_task)
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_leaves_its_callers_connection_alone() -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    eager = SimpleNamespace(request=SimpleNamespace(is_eager=True))
    celery_config._fresh_enough_connections(sender=eager)
    assert connection.connection is not None
