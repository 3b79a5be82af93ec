"""GitHub's primary rate limit (one bucket per token), its ``x-ratelimit-*`` headers, and the
rate-limit fault answers (primary: ``x-ratelimit-remaining: 0``; secondary: ``Retry-After``).

A ``304 Not Modified`` answer and ``GET /rate_limit`` do not count against the limit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sandbox.faults import Fault
from sandbox.web import Response

DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
PRIMARY_MESSAGE = ("API rate limit exceeded for user ID {uid}. If you reach out to GitHub Support "
                   "for help, please include the request ID {rid} and timestamp {ts}.")
SECONDARY_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before "
                     "you try again. If you reach out to GitHub Support for help, please include "
                     "the request ID {rid} and timestamp {ts}.")


@dataclass
class Bucket:
    limit: int
    used: int
    reset: int  # epoch seconds

    def roll(self, window: int) -> None:
        now = int(time.time())
        if now >= self.reset:
            self.used, self.reset = 0, now + window

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self) -> dict[str, str]:
        return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-used": str(min(self.used, self.limit)),
                "x-ratelimit-reset": str(self.reset), "x-ratelimit-resource": "core"}

    def as_json(self) -> dict[str, int]:
        return {"limit": self.limit, "remaining": self.remaining, "used": self.used,
                "reset": self.reset}


class RateLimits:
    """Per-token buckets. ``configure`` scripts them (e.g. ``remaining: 0`` → every further
    request is refused with ``status`` until ``reset_in`` seconds have passed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.limit, self.window, self.status = 5000, 3600, 403
            self._buckets: dict[str, Bucket] = {}
            self._preset: dict[str, Any] = {}  # remaining/reset_in for buckets made later

    def _bucket(self, token: str) -> Bucket:
        bucket = self._buckets.get(token)
        if bucket is None:
            bucket = self._buckets[token] = Bucket(self.limit, 0,
                                                   int(time.time()) + self.window)
            if self._preset.get("reset_at") is None or time.time() < self._preset["reset_at"]:
                self._apply(bucket, self._preset)
        bucket.roll(self.window)
        return bucket

    def peek(self, token: str) -> Bucket:
        with self._lock:
            return self._bucket(token)

    def take(self, token: str) -> tuple[bool, Bucket]:
        """Count one request; ``False`` when the bucket was already empty."""
        with self._lock:
            bucket = self._bucket(token)
            if bucket.remaining <= 0:
                return False, bucket
            bucket.used += 1
            return True, bucket

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if spec.get("limit") is not None:
                self.limit = int(spec["limit"])
            if spec.get("window") is not None:
                self.window = int(spec["window"])
            if spec.get("status") is not None:
                if int(spec["status"]) not in (403, 429):
                    raise ValueError("status must be 403 or 429")
                self.status = int(spec["status"])
            preset: dict[str, Any] = {"remaining": spec.get("remaining"), "reset_at": None}
            if spec.get("reset_in") is not None:
                preset["reset_at"] = int(time.time()) + int(spec["reset_in"])
            if spec.get("token"):
                self._apply(self._bucket(str(spec["token"])), preset)
            else:
                self._preset = preset
                for bucket in self._buckets.values():
                    self._apply(bucket, preset)
            return self.as_json()

    def _apply(self, bucket: Bucket, preset: dict[str, Any]) -> None:
        bucket.limit = self.limit
        if preset.get("remaining") is not None:
            bucket.used = max(0, bucket.limit - int(preset["remaining"]))
        if preset.get("reset_at") is not None:
            bucket.reset = int(preset["reset_at"])

    def as_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "window": self.window, "status": self.status,
                "tokens": {_mask(t): b.as_json() for t, b in self._buckets.items()}}


def _mask(token: str) -> str:
    return token[:4] + "…" if len(token) > 8 else "…"


def _stamp() -> tuple[str, str]:
    rid = f"{int(time.time() * 1000) & 0xFFFFFFFF:08X}:SANDBOX"
    ts = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return rid, ts


def primary_exceeded(bucket: Bucket, status: int, user_id: int) -> Response:
    rid, ts = _stamp()
    headers = {**bucket.headers(), "x-ratelimit-remaining": "0", "X-GitHub-Request-Id": rid}
    return Response.json({"message": PRIMARY_MESSAGE.format(uid=user_id, rid=rid, ts=ts),
                          "documentation_url": DOCS, "status": str(status)}, status, headers)


def fault_response(fault: Fault, bucket: Bucket) -> Response:
    """The answer for an injected fault on ``/api/v3``: a rate limit (``fault.rate_limit``) or a
    plain error status, GitHub-shaped."""
    status = fault.status or (403 if fault.rate_limit else 500)
    if fault.rate_limit == "primary":
        wait = fault.retry_after if fault.retry_after is not None else 60
        exhausted = Bucket(bucket.limit, bucket.limit, int(time.time()) + wait)
        return primary_exceeded(exhausted, status, 1)
    rid, ts = _stamp()
    if fault.rate_limit == "secondary":
        wait = fault.retry_after if fault.retry_after is not None else 60
        headers = {**bucket.headers(), "Retry-After": str(wait), "X-GitHub-Request-Id": rid}
        return Response.json({"message": SECONDARY_MESSAGE.format(rid=rid, ts=ts),
                              "documentation_url": DOCS + "#about-secondary-rate-limits",
                              "status": str(status)}, status, headers)
    headers = {**bucket.headers(), "X-GitHub-Request-Id": rid}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    messages = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout", 429: "Too Many Requests"}
    return Response.json({"message": messages.get(status, f"HTTP {status}"), "status": str(status),
                          "documentation_url": "https://docs.github.com/rest"}, status, headers)
