"""Celery's Redis transport with one Redis client per channel for its own commands.

kombu's Redis channel builds a new ``redis.Redis`` (copying its ~170 response callbacks) for
every message it publishes and every queue command it sends: a quarter of a task publish's CPU,
paid by the webhook intake on every delivery and by the worker on every kick. This channel
builds it once; the client takes a connection from the channel's pool for each command, as
before, so threads sharing a channel stay apart. Used for ``redis://`` brokers
(``CELERY_BROKER_TRANSPORT`` in config/settings.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    @cached_property
    def _commands(self) -> Any:
        return self._create_client()  # type: ignore[attr-defined]

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client if client else self._commands


class Transport(redis.Transport):
    Channel = Channel
