"""Liveness (/healthz: the process answers); readiness (/readyz: database and broker reachable).

/readyz is public: it says which dependency is down and nothing else (no exception names or
messages, which could carry host names, users or versions); the reason goes to the log.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from config.celery import app as celery_app

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        logger.exception("readyz: the database is unreachable")
        checks["database"] = "unavailable"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception:
        logger.exception("readyz: the broker is unreachable")
        checks["broker"] = "unavailable"
    down = [name for name, value in checks.items() if value != "ok"]
    body: dict[str, object] = {"status": "unavailable" if down else "ok", **checks}
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)
