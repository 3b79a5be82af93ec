"""`POST /hooks/<forge-slug>/`: verify, record, enqueue, answer 202. No forge call in here."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bots import forge_records, kicks, logcontext, metrics
from bots.inbound import bounds
from bots.inbound.table import INBOUND
from bots.scrubbing import scrubbed
from chains.models import Delivery
from config.celery import app as celery_app

log = logging.getLogger(__name__)

ENQUEUE_TIMEOUT = 2.0  # seconds the forge waits on a broker that does not answer


@csrf_exempt
@require_POST
def receive(request: HttpRequest, slug: str) -> JsonResponse:
    """Answer the forge, and count the request by forge, event and result (bots/metrics.py)."""
    started = time.perf_counter()
    seen: dict[str, str] = {}
    response = _receive(request, slug, seen)
    forge = seen.get("forge", metrics.UNKNOWN)
    metrics.INTAKE_SECONDS.labels(forge).observe(time.perf_counter() - started)
    metrics.WEBHOOKS.labels(forge, seen.get("event", metrics.UNKNOWN), _result(response)).inc()
    return response


_RESULTS = {400: "bad_request", 401: "unauthenticated", 404: "unknown_forge", 413: "too_large"}


def _result(response: JsonResponse) -> str:
    if response.status_code in _RESULTS:
        return _RESULTS[response.status_code]
    try:
        status = json.loads(response.content).get("status")
    except ValueError:
        status = None
    return status if status in ("accepted", "ignored", "duplicate") else str(response.status_code)


def _receive(request: HttpRequest, slug: str, seen: dict[str, str]) -> JsonResponse:
    """``seen``: the forge's slug and the event, once known (for the metrics' labels)."""
    limit = settings.BATON_MAX_WEBHOOK_BYTES
    if bounds.too_big(request.META.get("CONTENT_LENGTH"), limit):
        return _too_big(limit)
    forge = forge_records.by_slug(slug)
    if forge is None:
        return JsonResponse({"error": f"no forge called {slug!r}"}, status=404)
    inbound = INBOUND.get(forge.kind)
    if inbound is None:
        return JsonResponse({"error": f"{forge.kind} webhooks are not supported yet"}, status=404)
    seen["forge"] = forge.slug
    # Read the stream ourselves, at most one byte past the limit: `request.body` would answer
    # an HTML 400 above DATA_UPLOAD_MAX_MEMORY_SIZE, far below what forges send.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _too_big(limit)
    if not inbound.is_authentic(request.headers, body, forge.webhook_secret):
        return JsonResponse({"error": "bad or missing webhook signature or token"}, status=401)
    try:
        payload = bounds.loads(
            inbound.json_text(request.content_type or "", body), settings.BATON_MAX_JSON_DEPTH
        )
    except (bounds.TooDeep, bounds.NotFinite) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except RecursionError:
        return JsonResponse({"error": "the JSON nests too deeply"}, status=400)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "the body is not JSON"}, status=400)
    event = inbound.event_name(request.headers).replace(bounds.NUL, "")
    handled = inbound.handles(event)
    seen["event"] = event[:64] if handled else "other"  # a bounded set of labels
    payload, text = scrubbed(forge, event, payload)  # known masked values never stored
    key = inbound.dedupe_key(request.headers, body).replace(bounds.NUL, "")
    delivery_id, created = Delivery.objects.record(
        forge, event, key, payload, handled=handled, text=text
    )
    if not created:
        return JsonResponse({"status": "duplicate"}, status=202)
    logcontext.bind(delivery_id=delivery_id)
    log.info("delivery %s stored: %s", delivery_id, event[:64] if handled else "not handled")
    if handled and delivery_id is not None:
        transaction.on_commit(lambda: _enqueue(delivery_id, forge.kind, event))
    status = "accepted" if handled else "ignored"
    return JsonResponse({"status": status, "delivery": delivery_id}, status=202)


def _too_big(limit: int) -> JsonResponse:
    return JsonResponse(
        {"error": f"the body is larger than {limit} bytes (BATON_MAX_WEBHOOK_BYTES)"}, status=413
    )


def _enqueue(delivery_id: int, forge_kind: str, event: str) -> None:
    """Hand the stored delivery to a worker. With the broker down the delivery stays queued in
    the database and the sweeper enqueues it later: the forge still gets its 202, so it never
    counts a failure toward disabling the hook."""
    if celery_app.conf.task_always_eager:  # no broker involved: run it here
        kicks.deliver(delivery_id, forge_kind, event)
        return
    try:
        pool: Any = celery_app.pool  # kombu connections, one per thread at a time
        with pool.acquire(block=True, timeout=ENQUEUE_TIMEOUT) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=ENQUEUE_TIMEOUT)
            kicks.publish_delivery(connection, delivery_id, forge_kind, event)
    except Exception as exc:  # any broker failure: the sweeper takes over
        log.warning(
            "delivery %s stored but not enqueued (%s); the sweeper will pick it up",
            delivery_id,
            type(exc).__name__,
        )
