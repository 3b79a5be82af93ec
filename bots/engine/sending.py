"""Forge calls made side by side: on threads shared by the whole worker process (made once,
kept), so all fan-outs and mirrors of a process together keep at most ``SEND_LIMIT`` calls in
flight. The calls do HTTP only, no database: their callers read and write the rows."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

SEND_LIMIT = 32  # as many as the GitLab adapter keeps connections for (bots/forges/gitlab.py)
_senders: ThreadPoolExecutor | None = None
_senders_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _senders
    with _senders_lock:
        if _senders is None:
            _senders = ThreadPoolExecutor(SEND_LIMIT, thread_name_prefix="baton-send")
        return _senders


def side_by_side(calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
    """Each call's result, or what it raised, in the order of ``calls``; returns once every
    call has ended. A single call is made in this thread, and what it raises propagates."""
    if len(calls) == 1:
        return [calls[0]()]
    pool = _pool()
    futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    wait(futures)
    return [
        error if (error := future.exception()) is not None else future.result()
        for future in futures
    ]
