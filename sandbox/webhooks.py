"""Background webhook sender: a few worker threads, each with its own queue.

Deliveries are sharded by hook, so one hook's deliveries go out one at a time in the order they
were queued (a pipeline's created → pending → running → success hooks arrive in order). Nothing is
sent inline in an API request, and nothing is retried (GitLab does not retry either). Every attempt
is recorded in the journal, secrets redacted.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from sandbox.faults import Faults
from sandbox.journal import Journal

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    hook_key: str  # shards deliveries; one hook = one key
    url: str
    event: str  # the event header value, e.g. "Pipeline Hook"
    payload: dict[str, Any]
    headers: dict[str, str]
    fresh_uuid_headers: tuple[str, ...] = ()  # get a new UUID on every attempt
    secret_headers: tuple[str, ...] = ()  # not written to the journal
    hook_id: int | None = None
    body: bytes = field(default=b"")
    meta: dict[str, Any] = field(default_factory=dict)  # extra fields for the journal record

    def __post_init__(self) -> None:
        if not self.body:
            self.body = json.dumps(self.payload).encode()


class WebhookSender:
    def __init__(self, journal: Journal, faults: Faults, workers: int = 4, timeout: float = 5.0
                 ) -> None:
        self.journal = journal
        self.faults = faults
        self.timeout = timeout
        self._epoch = 0
        self._queues: list[queue.Queue[tuple[int, Delivery] | None]] = [
            queue.Queue() for _ in range(workers)
        ]
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name=f"sandbox-webhooks-{i}",
                             daemon=True)
            for i, q in enumerate(self._queues)
        ]
        self._local = threading.local()

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join(timeout=self.timeout + 1)

    def forget_pending(self) -> None:
        """Queued deliveries from before this call are discarded (used by reset)."""
        self._epoch += 1

    def enqueue(self, delivery: Delivery) -> None:
        shard = hash(delivery.hook_key) % len(self._queues)
        self._queues[shard].put((self._epoch, delivery))

    def idle(self) -> bool:
        return all(q.unfinished_tasks == 0 for q in self._queues)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
        return session

    def _work(self, q: queue.Queue[tuple[int, Delivery] | None]) -> None:
        while (item := q.get()) is not None:
            epoch, delivery = item
            try:
                if epoch == self._epoch:
                    self._attempt(delivery)
            except Exception:
                log.exception("sandbox webhook delivery crashed")
            finally:
                q.task_done()
        q.task_done()

    def _attempt(self, d: Delivery) -> None:
        headers = dict(d.headers)
        for name in d.fresh_uuid_headers:
            headers[name] = str(uuid.uuid4())
        record: dict[str, Any] = {
            "time": time.time(),
            "event": d.event,
            "hook_id": d.hook_id,
            "url": d.url,
            "headers": {k: v for k, v in headers.items() if k not in d.secret_headers},
            "payload": d.payload,
            "status": None,
            "error": None,
            "dropped": False,
            **d.meta,
        }
        fault = self.faults.drops_webhook(d.url, d.event)
        if fault is not None:
            record["dropped"] = True
            record["fault_id"] = fault.id
            self.journal.add(record)
            return
        started = time.monotonic()
        try:
            response = self._session().post(d.url, data=d.body, headers=headers,
                                            timeout=self.timeout, allow_redirects=False)
            record["status"] = response.status_code
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["elapsed"] = round(time.monotonic() - started, 4)
        self.journal.add(record)
