"""Injected faults: latency, error answers (before or after doing the work), dropped connections;
for webhook deliveries: dropped, delayed, reordered and duplicated ones."""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

WEBHOOK_MODES = ("drop_webhooks", "delay_webhooks", "reorder_webhooks", "duplicate_webhooks")
MODES = ("before", "after", "drop", "drop_after", *WEBHOOK_MODES)


@dataclass
class Fault:
    id: int
    mode: str | None = None  # None: latency only
    status: int | None = None
    retry_after: int | None = None
    rate: float = 1.0
    count: int | None = None
    method: str | None = None
    path: str | None = None  # regex searched in the raw path (webhooks: in the target URL)
    event: str | None = None  # webhook modes only: event (X-Gitlab-Event / X-GitHub-Event)
    delay: float = 0.0  # delay_webhooks: seconds the delivery is held back
    new_id: bool = False  # duplicate_webhooks: the copy gets new delivery ids
    latency: float = 0.0
    rate_limit: str | None = None  # GitHub only: "primary" | "secondary" rate-limit answer
    injected: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self._regex is None or self._regex.search(path) is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "status": self.status,
            "retry_after": self.retry_after,
            "rate": self.rate,
            "count": self.count,
            "method": self.method,
            "path": self.path,
            "event": self.event,
            "delay": self.delay,
            "new_id": self.new_id,
            "latency": self.latency,
            "rate_limit": self.rate_limit,
            "injected": self.injected,
        }


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[int, Fault] = {}
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        mode = spec.get("mode")
        status = spec.get("status")
        rate_limit = spec.get("rate_limit")
        if rate_limit not in (None, "primary", "secondary"):
            raise ValueError("rate_limit must be primary or secondary")
        if rate_limit is not None:
            mode = mode or "before"
            status = status if status is not None else 403
        if mode is None and status is not None:
            mode = "before"
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if mode in ("before", "after") and status is None:
            status = 429 if mode == "before" else 500
        path = spec.get("path")
        fault = Fault(
            id=next(self._ids),
            mode=mode,
            status=int(status) if status is not None else None,
            retry_after=int(spec["retry_after"]) if spec.get("retry_after") is not None else None,
            rate=float(spec["rate"]) if spec.get("rate") is not None else 1.0,
            count=int(spec["count"]) if spec.get("count") is not None else None,
            method=spec.get("method"),
            path=path,
            event=spec.get("event"),
            delay=float(spec.get("delay") or 0.0),
            new_id=bool(spec.get("new_id")),
            latency=float(spec.get("latency") or 0.0),
            rate_limit=rate_limit,
            _regex=re.compile(path) if path else None,
        )
        with self._lock:
            self._faults[fault.id] = fault
        return fault

    def all(self) -> list[Fault]:
        with self._lock:
            return list(self._faults.values())

    def remove(self, fault_id: int | None = None) -> bool:
        with self._lock:
            if fault_id is None:
                self._faults.clear()
                return True
            return self._faults.pop(fault_id, None) is not None

    def _claim(self, fault: Fault) -> bool:
        """Decide (under the lock) whether this matching fault fires now; counts it if so."""
        if fault.count is not None and fault.injected >= fault.count:
            return False
        if fault.rate < 1.0 and random.random() >= fault.rate:
            return False
        fault.injected += 1
        return True

    def for_request(self, method: str, path: str) -> tuple[float, Fault | None]:
        """Total latency to add and the fault to inject (if any) for an API request."""
        latency, chosen = 0.0, None
        with self._lock:
            for fault in self._faults.values():
                if fault.mode in WEBHOOK_MODES or not fault.matches(method, path):
                    continue
                latency += fault.latency
                if chosen is None and fault.mode is not None and self._claim(fault):
                    chosen = fault
        return latency, chosen

    def for_webhook(self, url: str, event: str) -> Fault | None:
        """The delivery fault that fires for this delivery, if any (the first that matches)."""
        with self._lock:
            for fault in self._faults.values():
                if fault.mode not in WEBHOOK_MODES or not fault.matches("POST", url):
                    continue
                if fault.event and fault.event != event:
                    continue
                if self._claim(fault):
                    return fault
        return None


def rate_limit_headers(retry_after: int | None) -> dict[str, str]:
    wait = retry_after if retry_after is not None else 1
    reset = int(time.time()) + wait
    return {
        "Retry-After": str(wait),
        "RateLimit-Limit": "60",
        "RateLimit-Name": "throttle_authenticated_api",
        "RateLimit-Observed": "61",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(reset),
        "RateLimit-ResetTime": formatdate(reset, usegmt=True),
    }
