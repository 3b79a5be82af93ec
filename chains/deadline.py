"""A time budget for work done on someone's behalf while they wait (the dashboard's dry run).

``with within(seconds): …`` sets a deadline for the code inside (per thread and task, through a
context variable); long loops and every forge request call :func:`check`, which raises
:class:`TimeUp` once the deadline has passed. Work outside ``within`` has no deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("baton_deadline", default=None)


class TimeUp(Exception):
    """The work ran past its deadline and was stopped."""

    def __init__(self, seconds: float):
        super().__init__(f"gave up after {seconds:g} s")
        self.seconds = seconds


@contextmanager
def within(seconds: float) -> Iterator[None]:
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def check() -> None:
    """Raise TimeUp when the current deadline has passed (nothing when there is none)."""
    current = _deadline.get()
    if current is not None and time.monotonic() > current[0]:
        raise TimeUp(current[1])
