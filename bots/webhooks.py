"""`POST /hooks/<forge-slug>/`: verify, record, enqueue, answer 202. No forge call in here."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bots import tasks
from bots.dispatch import INBOUND
from chains.models import Delivery, Forge


@csrf_exempt
@require_POST
def receive(request: HttpRequest, slug: str) -> JsonResponse:
    forge = get_object_or_404(Forge, slug=slug)
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
    key = inbound.dedupe_key(request.headers, request.body)
    handled = inbound.handles(event)
    try:
        with transaction.atomic():
            delivery, created = Delivery.objects.get_or_create(
                forge=forge,
                dedupe_key=key,
                defaults={
                    "event": event[:100],
                    "payload": payload,
                    "outcome": Delivery.Outcome.QUEUED if handled else Delivery.Outcome.IGNORED,
                },
            )
            if created and handled:
                transaction.on_commit(lambda: tasks.process_delivery.delay(delivery.pk))
            elif created:
                Delivery.objects.filter(pk=delivery.pk).update(processed_at=delivery.received_at)
    except IntegrityError:  # the same delivery arrived at the same moment on another worker
        return JsonResponse({"status": "duplicate"}, status=202)
    status = "accepted" if created and handled else "duplicate" if not created else "ignored"
    return JsonResponse({"status": status, "delivery": delivery.pk}, status=202)
