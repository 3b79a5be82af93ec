"""Row locks held by another connection, for tests of who waits on whom (PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def held_elsewhere(take: Callable[[], object]) -> Iterator[None]:
    """Run ``take`` (it locks rows) in a transaction of another thread's connection, and keep
    that transaction open while the block runs. What ``take`` raises is raised here."""
    locked, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                take()
                locked.set()
                done.wait(10)
        except BaseException as exc:  # raised in the test's thread below
            errors.append(exc)
            locked.set()
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10), "the other connection did not take its lock"
        if errors:
            raise errors[0]
        yield
    finally:
        done.set()
        holder.join(10)
