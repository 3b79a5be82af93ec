"""`POST /hooks/<forge-slug>/`: verify, record, enqueue, answer 202. No forge call in here."""

from __future__ import annotations

import threading
import time

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bots import tasks
from bots.dispatch import INBOUND
from bots.scrubbing import scrub_payload
from chains.models import Delivery, Forge

FORGE_CACHE_SECONDS = 10.0  # a changed secret takes effect within this long
_forges: dict[str, tuple[float, Forge | None]] = {}
_lock = threading.Lock()


def _forge(slug: str) -> Forge | None:
    """The forge by slug, its secret decrypted once per process and a few seconds."""
    now = time.monotonic()
    with _lock:
        cached = _forges.get(slug)
    if cached and cached[0] > now:
        return cached[1]
    forge = Forge.objects.filter(slug=slug).first()
    if forge is not None:
        forge.webhook_secret  # noqa: B018 - decrypt now, not on every request
    with _lock:
        _forges[slug] = (now + FORGE_CACHE_SECONDS, forge)
    return forge


@receiver([post_save, post_delete], sender=Forge)
def _forget_forge(sender: type[Forge], instance: Forge, **kwargs: object) -> None:
    with _lock:
        _forges.clear()


@csrf_exempt
@require_POST
def receive(request: HttpRequest, slug: str) -> JsonResponse:
    forge = _forge(slug)
    if forge is None:
        return JsonResponse({"error": f"no forge called {slug!r}"}, status=404)
    inbound = INBOUND.get(forge.kind)
    if inbound is None:
        return JsonResponse({"error": f"{forge.kind} webhooks are not supported yet"}, status=404)
    if not inbound.is_authentic(request.headers, request.body, forge.webhook_secret):
        return JsonResponse({"error": "bad or missing webhook signature or token"}, status=401)
    try:
        payload = inbound.decode(request.content_type or "", request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "the body is not JSON"}, status=400)
    event = inbound.event_name(request.headers)
    handled = inbound.handles(event)
    payload = scrub_payload(forge, event, payload)  # known masked values never stored
    delivery_id, created = Delivery.objects.record(
        forge, event, inbound.dedupe_key(request.headers, request.body), payload, handled=handled
    )
    if not created:
        return JsonResponse({"status": "duplicate"}, status=202)
    if handled and delivery_id is not None:
        transaction.on_commit(lambda: tasks.process_delivery.delay(delivery_id))
    status = "accepted" if handled else "ignored"
    return JsonResponse({"status": status, "delivery": delivery_id}, status=202)
