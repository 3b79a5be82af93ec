"""Gunicorn hooks for Prometheus's multiprocess mode (docs/operations.md, "Metrics").

Use with ``gunicorn -c config/gunicorn_prometheus.py config.wsgi`` (or copy ``child_exit`` into
your own gunicorn config) when PROMETHEUS_MULTIPROC_DIR is set: a worker that exits leaves its
live gauges behind unless it is marked dead. Empty that directory before gunicorn starts.
"""

from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
