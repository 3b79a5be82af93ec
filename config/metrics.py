"""`GET /metrics`: Baton's metrics in Prometheus's text format, for whoever the settings allow.

Access (docs/operations.md, "Metrics"): a request carrying ``Authorization: Bearer
<BATON_METRICS_TOKEN>`` is always let in; without the token, only requests from an address in
BATON_METRICS_ALLOW (by default 127.0.0.1 and ::1 when DEBUG, nobody otherwise). With no token
and nobody allowed, /metrics does not exist (404).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from bots.metrics import DatabaseCollector


def registries() -> list[CollectorRegistry]:
    """What one scrape reports: this process's families (or, with PROMETHEUS_MULTIPROC_DIR, those
    of every process on the host) and the counts read from the database."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return [merged, database]
    return [REGISTRY, database]


def exposition() -> bytes:
    return b"".join(generate_latest(registry) for registry in registries())


def _allowed_address(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.BATON_METRICS_ALLOW)


def _token_ok(request: HttpRequest) -> bool | None:
    """True/False when a token is configured and the request gives/lacks it; None otherwise."""
    token: str = settings.BATON_METRICS_TOKEN
    if not token:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = _token_ok(request)
    if token is None and not settings.BATON_METRICS_ALLOW:
        return HttpResponse(status=404)
    if not (token or _allowed_address(request)):
        response = HttpResponse(
            "metrics: give Authorization: Bearer <BATON_METRICS_TOKEN>, or scrape from an "
            "address in BATON_METRICS_ALLOW\n",
            status=401 if token is False else 403,
            content_type="text/plain",
        )
        if token is False:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
