"""Celery's side of metrics and log ids, connected once when config/celery.py loads.

- Every message queued carries the delivery and chain ids of the work that queued it
  (``baton_ids``) and when it was queued (``baton_sent_at``).
- Before a task runs, its ids are set from those headers and from its own arguments
  (``delivery_id``, ``chain_id``, ``run_id`` by name), so all its log lines carry them; the
  queue wait, run time and retries of each task are counted (bots/metrics.py).
- Logging is Django's LOGGING (LOG_FORMAT=plain|json), in the worker too: Celery does not
  install its own handlers.
- BATON_WORKER_METRICS_PORT: the worker answers Prometheus on that port itself (a worker in
  another container or machine than the web process).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import threading
import time
from datetime import datetime
from typing import Any

from celery import signals

from bots import logcontext, metrics

log = logging.getLogger(__name__)

SENT_AT = "baton_sent_at"
_started: dict[str, tuple[float, dict[str, int]]] = {}
_lock = threading.Lock()


@signals.setup_logging.connect
def _use_django_logging(loglevel: Any = None, **kwargs: Any) -> None:
    """A receiver here tells Celery to leave logging alone: Django's LOGGING applies. The
    worker's ``-l LEVEL`` still counts unless LOG_LEVEL says otherwise."""
    if loglevel and "LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(loglevel)


@signals.before_task_publish.connect
def _stamp(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is None:
        return
    # The delivery and chain the new task comes from; a run is named only by its own task.
    ids = {k: v for k, v in logcontext.current().items() if k != "run_id"}
    if ids:
        headers.setdefault(logcontext.HEADER, ids)
    headers[SENT_AT] = time.time()


def _header(request: Any, name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


def _ids_from_arguments(task: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    try:
        bound = _signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in bound.arguments.items() if k in logcontext.IDS}


@functools.cache
def _signature(run: Any) -> inspect.Signature:
    """A task's signature, read once per process (``inspect.signature`` on every task was a
    fifth of what a task's log ids cost)."""
    return inspect.signature(run)


def _chain_of_run(run_id: Any) -> int | None:
    from chains.models import Run

    try:
        return Run.objects.filter(pk=int(run_id)).values_list("chain_id", flat=True).first()
    except (TypeError, ValueError):
        return None
    except Exception:  # never stop a task over its log ids
        log.debug("no chain id for run %s", run_id, exc_info=True)
        return None


@signals.task_prerun.connect
def _task_starts(
    task_id: str | None = None,
    task: Any = None,
    args: Any = None,
    kwargs: Any = None,
    **extra: Any,
) -> None:
    if task is None or task_id is None:
        return
    with _lock:
        _started[task_id] = (time.perf_counter(), logcontext.current())
    logcontext.clear()
    request = task.request
    carried = _header(request, logcontext.HEADER)
    if isinstance(carried, dict):
        logcontext.bind(**carried)
    own = _ids_from_arguments(task, args, kwargs)
    logcontext.bind(**own)
    if "run_id" in own and "chain_id" not in own:
        # A run's own chain, even when another chain's work queued the task (a supersede).
        logcontext.bind(chain_id=_chain_of_run(own["run_id"]))
    sent_at = _header(request, SENT_AT)
    if isinstance(sent_at, int | float) and not getattr(request, "is_eager", False):
        due = float(sent_at)
        eta = getattr(request, "eta", None)
        if eta:
            with contextlib.suppress(ValueError):
                due = max(due, datetime.fromisoformat(str(eta)).timestamp())
        metrics.QUEUE_WAIT.labels(task.name).observe(max(0.0, time.time() - due))


@signals.task_postrun.connect
def _task_ends(
    task_id: str | None = None, task: Any = None, state: str | None = None, **extra: Any
) -> None:
    if task is None or task_id is None:
        return
    with _lock:
        started, saved = _started.pop(task_id, (None, {}))
    if started is not None:
        seconds = time.perf_counter() - started
        metrics.TASK_SECONDS.labels(task.name, state or "UNKNOWN").observe(seconds)
    logcontext.clear()
    logcontext.bind(**saved)  # an eager task ran inside its caller's context


@signals.task_retry.connect
def _task_retries(sender: Any = None, **extra: Any) -> None:
    name = getattr(sender, "name", None)
    if name:
        metrics.TASK_RETRIES.labels(name).inc()


@signals.worker_init.connect
def _serve_worker_metrics(**kwargs: Any) -> None:
    from django.conf import settings

    port = settings.BATON_WORKER_METRICS_PORT
    if not port:
        return
    from prometheus_client import start_http_server

    from config.metrics import registries

    registry = registries()[0]  # the process families; the database counts come from /metrics
    try:
        start_http_server(port, addr=settings.BATON_WORKER_METRICS_ADDR, registry=registry)
    except OSError as exc:
        log.warning(
            "worker metrics not served on %s:%s (%s); BATON_WORKER_METRICS_PORT",
            settings.BATON_WORKER_METRICS_ADDR,
            port,
            exc,
        )
        return
    log.info("worker metrics on http://%s:%s/metrics", settings.BATON_WORKER_METRICS_ADDR, port)


@signals.worker_process_shutdown.connect
def _forget_process(pid: int | None = None, **kwargs: Any) -> None:
    """A prefork child that ends leaves its live gauges behind unless marked dead."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
