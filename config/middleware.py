"""Baton's own middleware.

- ``RejectNulMiddleware``: requests whose path or query string carries a NUL character are
  refused with 400 where they enter: PostgreSQL's text cannot hold NUL, so such a value would
  otherwise fail deep inside a query as a 500.
- ``CSPMiddleware``: django-csp's, for documents only.
"""

from __future__ import annotations

from collections.abc import Callable

from csp.middleware import CSPMiddleware as PolicyMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.response import HttpResponseBase

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


JSON = "application/json"


class CSPMiddleware(PolicyMiddleware):
    """The Content-Security-Policy on every answer but JSON. A policy governs a document: a JSON
    answer (a webhook's 202, the API) is never rendered as one (``X-Content-Type-Options:
    nosniff`` keeps browsers from taking it for HTML), and building the policy was a tenth of
    a webhook delivery's CPU (docs/benchmarks.md, F4)."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.get("Content-Type", "").startswith(JSON):
            return response
        return super().process_response(request, response)
