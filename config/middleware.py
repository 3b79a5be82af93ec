"""Requests whose path or query string carries a NUL character are refused with 400 where they
enter: PostgreSQL's text cannot hold NUL, so such a value would otherwise fail deep inside a
query as a 500."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

NUL = "\x00"
MESSAGE = "the address contains a NUL character (%00), which Baton does not accept"


class RejectNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            if request.path.startswith(("/api/", "/hooks/")):
                return JsonResponse({"error": MESSAGE}, status=400)
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    if NUL in request.path_info:
        return True
    if request.path.startswith("/api/"):
        return False  # the API's filters validate each parameter and name the bad one
    return any(NUL in key or any(NUL in v for v in values) for key, values in request.GET.lists())
