"""Bounded, thread-safe logs of the API requests received and the webhooks attempted."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any

MAX_ENTRIES = 50_000


class Journal:
    """Append-only list of dict records, each stamped with an increasing ``seq``."""

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._items: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = itertools.count(1)

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record["seq"] = next(self._seq)
            self._items.append(record)
        return record

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def select(self, since: int = 0, **equal: Any) -> list[dict[str, Any]]:
        """Records with ``seq > since`` whose fields equal every non-None ``equal`` value."""
        with self._lock:
            items = list(self._items)
        wanted = {k: v for k, v in equal.items() if v is not None}
        return [
            r for r in items
            if r["seq"] > since and all(r.get(k) == v for k, v in wanted.items())
        ]
