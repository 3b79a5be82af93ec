"""Baton's URLs plus `POST /bench/bare/`: the same middleware stack and server, no database and
no broker. The ceiling that `bench/intake.py` measures the webhook intake against."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    request.body  # noqa: B018 - read the body like the webhook view does
    return JsonResponse({"status": "accepted", "delivery": 0}, status=202)


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("config.urls")),
]
