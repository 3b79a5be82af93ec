"""Background webhook sender: a few worker threads, each with its own queue.

Deliveries are sharded by hook, so one hook's deliveries go out one at a time in the order they
were queued (a pipeline's created → pending → running → success hooks arrive in order), unless a
delivery fault says otherwise. Nothing is sent inline in an API request, and nothing is retried.
Every attempt is recorded in the journal, secrets redacted.

Like the real forges: a receiver has 10 s to answer (GitHub: "Respond within 10 seconds",
docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks), and a GitLab hook
that fails four consecutive times is temporarily disabled — one minute, doubling on each further
failure up to a day — and after 40 consecutive failures disabled for good
(docs.gitlab.com/user/project/integrations/webhooks/#auto-disabled-webhooks). Durations of
temporary disabling are divided by the time scale, like the pipeline clock.

Delivery faults (``sandbox/faults.py``): ``drop_webhooks`` (never sent), ``delay_webhooks`` (sent
``delay`` seconds later, so later deliveries overtake it), ``reorder_webhooks`` (held back and
sent right after the hook's next delivery) and ``duplicate_webhooks`` (sent twice; with
``new_id`` the second copy carries new delivery ids, as a forge's re-send of the event would).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
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
    id_headers: tuple[str, ...] = ()  # what identifies the delivery (new on a new-id duplicate)
    health: Any = None  # a GitLab Hook: auto-disabled after consecutive failures

    def __post_init__(self) -> None:
        if not self.body:
            self.body = json.dumps(self.payload).encode()


TIMEOUT = 10.0  # seconds a receiver has to answer
FAILURES_TO_DISABLE = 4  # consecutive failures: temporarily disabled
FAILURES_TO_DISABLE_FOR_GOOD = 40  # consecutive failures: permanently disabled
FIRST_BACKOFF = 60.0  # seconds of the first temporary disabling, doubled each further failure
MAX_BACKOFF = 86400.0
REORDER_WAIT = 5.0  # a held-back delivery goes out after this long if no other one comes


class WebhookSender:
    def __init__(self, journal: Journal, faults: Faults, workers: int = 4,
                 timeout: float = TIMEOUT, time_scale: float = 1.0) -> None:
        self.journal = journal
        self.faults = faults
        self.timeout = timeout
        self.time_scale = time_scale
        self._epoch = 0
        self._health_lock = threading.Lock()
        self._held: dict[str, tuple[int, Delivery]] = {}  # hook key → delivery held back
        self._held_lock = threading.Lock()
        self._waiting = 0  # deliveries delayed or held back by a fault, not yet attempted
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
        with self._held_lock:
            waiting = self._waiting
        return waiting == 0 and all(q.unfinished_tasks == 0 for q in self._queues)

    def _wait(self, change: int) -> None:
        with self._held_lock:
            self._waiting += change

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
                    self._deliver(epoch, delivery)
            except Exception:
                log.exception("sandbox webhook delivery crashed")
            finally:
                q.task_done()
        q.task_done()

    def _deliver(self, epoch: int, d: Delivery) -> None:
        """Apply a delivery fault, if one fires, then attempt (and send what was held back)."""
        with self._held_lock:
            held = self._held.pop(d.hook_key, None)
        fault = self.faults.for_webhook(d.url, d.event)
        mode = fault.mode if fault is not None else None
        if fault is not None and mode == "drop_webhooks":
            self.journal.add({**self._record(d, dict(d.headers)), "dropped": True,
                              "fault_id": fault.id})
        elif fault is not None and mode == "delay_webhooks":
            self._wait(1)
            timer = threading.Timer(fault.delay, self._later, (epoch, d, {"delayed": fault.delay,
                                                                          "fault_id": fault.id}))
            timer.daemon = True
            timer.start()
        elif fault is not None and mode == "reorder_webhooks" and held is None:
            with self._held_lock:
                self._held[d.hook_key] = (epoch, d)
                self._waiting += 1
            timer = threading.Timer(REORDER_WAIT, self._release, (d.hook_key, d))
            timer.daemon = True
            timer.start()
        else:
            self._attempt(d)
            if fault is not None and mode == "duplicate_webhooks":
                copy = d
                if fault.new_id:
                    fresh = {name: str(uuid.uuid4()) for name in d.id_headers}
                    copy = replace(d, headers={**d.headers, **fresh},
                                   meta={**d.meta, **({"delivery": fresh[d.id_headers[0]]}
                                                      if "delivery" in d.meta and fresh else {})})
                self._attempt(copy, {"duplicate": True, "new_id": fault.new_id,
                                     "fault_id": fault.id})
        if held is not None:
            self._later(held[0], held[1], {"reordered": True})

    def _later(self, epoch: int, d: Delivery, extra: dict[str, Any]) -> None:
        """Attempt a delivery that was delayed or held back (and stop counting it as waiting)."""
        try:
            if epoch == self._epoch:
                self._attempt(d, extra)
        except Exception:
            log.exception("sandbox webhook delivery crashed")
        finally:
            self._wait(-1)

    def _release(self, hook_key: str, d: Delivery) -> None:
        """A held-back delivery no later one overtook: send it now."""
        with self._held_lock:
            held = self._held.get(hook_key)
            if held is None or held[1] is not d:
                return
            del self._held[hook_key]
        self._later(held[0], d, {"reordered": True})

    def _record(self, d: Delivery, headers: dict[str, str]) -> dict[str, Any]:
        return {
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

    def _attempt(self, d: Delivery, extra: dict[str, Any] | None = None) -> None:
        headers = dict(d.headers)
        for name in d.fresh_uuid_headers:
            headers[name] = str(uuid.uuid4())
        record = {**self._record(d, headers), **(extra or {})}
        disabled = self._disabled(d.health)
        if disabled:
            record["disabled"] = disabled  # the forge does not even try
            self.journal.add(record)
            return
        started = time.monotonic()
        ok = False
        try:
            response = self._session().post(d.url, data=d.body, headers=headers,
                                            timeout=self.timeout, allow_redirects=False)
            record["status"] = response.status_code
            ok = response.status_code < 400
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["elapsed"] = round(time.monotonic() - started, 4)
        self._count(d.health, ok)
        self.journal.add(record)

    # -- GitLab's auto-disabling ---------------------------------------------------------------

    def _disabled(self, hook: Any) -> str | None:
        if hook is None:
            return None
        with self._health_lock:
            if hook.permanently_disabled:
                return "permanently"
            if hook.disabled_until is not None and hook.disabled_until > time.time():
                return "temporarily"
        return None

    def _count(self, hook: Any, ok: bool) -> None:
        if hook is None:
            return
        with self._health_lock:
            if ok:
                hook.recent_failures, hook.disabled_until = 0, None
                return
            hook.recent_failures += 1
            if hook.recent_failures >= FAILURES_TO_DISABLE_FOR_GOOD:
                hook.permanently_disabled = True
            elif hook.recent_failures >= FAILURES_TO_DISABLE:
                backoff = min(FIRST_BACKOFF * 2 ** (hook.recent_failures - FAILURES_TO_DISABLE),
                              MAX_BACKOFF)
                hook.disabled_until = time.time() + backoff / self.time_scale
