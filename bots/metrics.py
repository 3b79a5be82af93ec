"""Baton's Prometheus metric families, and the few calls that feed them.

Every family is listed in docs/operations.md ("Metrics"); deploy/grafana/baton.json and
deploy/prometheus/alerts.yml use only these names (a test checks it). Labels are bounded: a
``forge`` label is the slug of a forge the admin configured (or the adapter kind), never a word
taken from a request. With PROMETHEUS_MULTIPROC_DIR set, prometheus-client keeps the values in
files there, so that every web and worker process on a host is counted (config/metrics.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from chains.status import Status

# --- intake (web) -------------------------------------------------------------------------------
WEBHOOKS = Counter(
    "baton_webhooks_received",
    "Webhook requests at /hooks/, by forge, event and what intake did with them "
    "(accepted, ignored, duplicate, unauthenticated, bad_request, too_large, unknown_forge).",
    ["forge", "event", "result"],
)
INTAKE_SECONDS = Histogram(
    "baton_intake_seconds",
    "Time to answer one webhook request (verify, store, enqueue).",
    ["forge"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# --- delivery processing (worker) -------------------------------------------------------------
DELIVERIES = Counter(
    "baton_deliveries",
    "Stored deliveries handled by a worker, by forge, event and outcome "
    "(processed, ignored, rejected, failed).",
    ["forge", "event", "outcome"],
)
QUEUE_WAIT = Histogram(
    "baton_queue_wait_seconds",
    "From a task being queued (or its countdown ending) to a worker starting it.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)
TRIGGERS = Counter(
    "baton_triggers",
    "Attempts to start a downstream pipeline, by forge and result "
    "(triggered, retry, rate_limited, failed).",
    ["forge", "result"],
)
# --- forge API (adapters) ---------------------------------------------------------------------
FORGE_REQUESTS = Counter(
    "baton_forge_requests",
    "Requests to a forge's API, by forge, method and status class (2xx, 3xx, 4xx, 5xx, error).",
    ["forge", "method", "status"],
)
FORGE_SECONDS = Histogram(
    "baton_forge_request_seconds",
    "Latency of requests to a forge's API.",
    ["forge"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FORGE_ERRORS = Counter(
    "baton_forge_errors",
    "Forge API requests that failed, by forge and kind (connection, client, server, rate_limited).",
    ["forge", "kind"],
)
RATE_LIMIT_WAIT = Counter(
    "baton_forge_rate_limit_wait_seconds",
    "Seconds forges asked Baton to wait (Retry-After or the rate-limit reset) when they refused "
    "a request for its rate limit.",
    ["forge"],
)
RATE_LIMIT_REMAINING = Gauge(
    "baton_forge_rate_limit_remaining",
    "Requests left in the forge's rate-limit window, as its last answer said.",
    ["forge"],
    multiprocess_mode="mostrecent",
)
# --- Celery -----------------------------------------------------------------------------------
TASK_SECONDS = Histogram(
    "baton_task_seconds",
    "Run time of Celery tasks, by task and final state (SUCCESS, FAILURE, RETRY, ...).",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 150.0),
)
TASK_RETRIES = Counter(
    "baton_task_retries",
    "Celery task retries asked for, by task.",
    ["task"],
)
# --- data over time ---------------------------------------------------------------------------
PRUNED = Counter(
    "baton_pruned",
    "Rows removed by the periodic pruning, by kind (deliveries, chains, audit_events).",
    ["kind"],
)
# Notifications (e-mail, chat) do not exist yet; their family is added with them.

UNKNOWN = "unknown"


def status_class(status: int | None) -> str:
    return "error" if status is None else f"{status // 100}xx"


def forge_call(
    forge: str,
    method: str,
    status: int | None,
    seconds: float,
    headers: Mapping[str, str] | None = None,
    *,
    wait: float | None = None,
) -> None:
    """One request to a forge's API: ``status`` None when no answer came back; ``wait``: the
    seconds the adapter read from a rate-limit refusal, when it knows. Called from the adapters'
    request paths only (bots/forges/github.py ``_send``, gitlab.py's session hook)."""
    method = method.upper() if method.upper() in _METHODS else "OTHER"
    FORGE_REQUESTS.labels(forge, method, status_class(status)).inc()
    FORGE_SECONDS.labels(forge).observe(max(0.0, seconds))
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    remaining = lower.get("x-ratelimit-remaining") or lower.get("ratelimit-remaining")
    if remaining is not None and remaining.isdigit():
        RATE_LIMIT_REMAINING.labels(forge).set(int(remaining))
    if status is None:
        FORGE_ERRORS.labels(forge, "connection").inc()
    elif wait is not None or status == 429 or (status == 403 and remaining == "0"):
        FORGE_ERRORS.labels(forge, "rate_limited").inc()
        seconds_asked = _wait(lower) if wait is None else min(3600.0, max(0.0, wait))
        RATE_LIMIT_WAIT.labels(forge).inc(seconds_asked)
    elif status >= 500:
        FORGE_ERRORS.labels(forge, "server").inc()
    elif status >= 400 and status not in (404, 409):  # "not there" is an answer, not an error
        FORGE_ERRORS.labels(forge, "client").inc()


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})


def _wait(headers: Mapping[str, str]) -> float:
    value = headers.get("retry-after", "")
    try:
        return min(3600.0, max(0.0, float(value)))
    except ValueError:
        pass
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset") or ""
    if reset.isdigit():
        return min(3600.0, max(0.0, int(reset) - time.time()))
    return 0.0


def forge_response_hook(forge: str) -> Any:
    """A requests session response hook counting every answer (python-gitlab's session)."""

    def hook(response: Any, *args: Any, **kwargs: Any) -> None:
        method = getattr(getattr(response, "request", None), "method", "") or ""
        elapsed = getattr(response, "elapsed", None)
        seconds = elapsed.total_seconds() if isinstance(elapsed, timedelta) else 0.0
        forge_call(forge, method, response.status_code, seconds, response.headers)

    return hook


def delivery_handled(forge: str, event: str, outcome: str) -> None:
    DELIVERIES.labels(forge, event[:64], outcome).inc()


def trigger(forge: str, result: str) -> None:
    TRIGGERS.labels(forge, result).inc()


# --- read from the database at scrape time ----------------------------------------------------

RUN_STATES_ALL = tuple(str(s) for s in Status)


class DatabaseCollector(Collector):
    """Counts read at scrape time, one cheap query each: runs and chains by status, open runs
    and those being polled, deliveries waiting for a worker, and the last delivery per forge.

    These come from PostgreSQL, so they are the same whichever process is scraped."""

    def collect(self) -> Iterator[Metric]:
        # Imported at scrape time: this module loads with the Celery app, before Django's apps.
        from django.db.models import Count, Max, Min  # (see above)
        from django.utils import timezone  # (see above)

        from chains.models import Chain, Delivery, Run  # (see above)
        from chains.status import ACTIVE  # (see above)

        runs = GaugeMetricFamily("baton_runs", "Runs by status.", labels=["status"])
        for status, count in _counts(Run.objects.values_list("status").annotate(Count("pk"))):
            runs.add_metric([status], count)
        yield runs

        chains = GaugeMetricFamily("baton_chains", "Chains by status.", labels=["status"])
        for status, count in _counts(Chain.objects.values_list("status").annotate(Count("pk"))):
            chains.add_metric([status], count)
        yield chains

        from bots.engine.polling import due_filter, silent_forges  # (see above)

        now = timezone.now()
        open_runs = Run.objects.filter(status__in=sorted(ACTIVE), dispatch=Run.Dispatch.SENT)
        totals = open_runs.aggregate(open=Count("pk"), polled=Count("pk", filter=due_filter(now)))
        yield GaugeMetricFamily(
            "baton_runs_open",
            "Runs the forge has and that have not finished (followed by webhooks or polling).",
            value=totals["open"] or 0,
        )
        yield GaugeMetricFamily(
            "baton_runs_polled",
            "Open runs quiet long enough to be polled (BATON_POLL_AFTER, BATON_POLL_AFTER_HOOKED, "
            "BATON_HOOK_SILENCE).",
            value=totals["polled"] or 0,
        )

        queued = Delivery.objects.filter(processed_at__isnull=True).aggregate(
            n=Count("pk"), oldest=Min("received_at")
        )
        yield GaugeMetricFamily(
            "baton_deliveries_queued",
            "Stored deliveries no worker has finished yet.",
            value=queued["n"] or 0,
        )
        oldest = queued["oldest"]
        yield GaugeMetricFamily(
            "baton_deliveries_queued_oldest_seconds",
            "Age of the oldest delivery no worker has finished yet (0: none).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )

        last = GaugeMetricFamily(
            "baton_last_delivery_timestamp_seconds",
            "Unix time of the newest delivery stored per forge (for hook-silence alerts).",
            labels=["forge"],
        )
        latest = Delivery.objects.values_list("forge__slug").annotate(at=Max("received_at"))
        for slug, at in latest:
            if at is not None:
                last.add_metric([slug], at.timestamp())
        yield last

        silence = GaugeMetricFamily(
            "baton_forge_hook_silence_seconds",
            "Seconds since a forge with open runs last delivered a webhook, when longer than "
            "BATON_HOOK_SILENCE (its open runs are polled); absent otherwise.",
            labels=["forge"],
        )
        for slug, seen in silent_forges(now).values_list("slug", "hooks_seen_at"):
            silence.add_metric([slug], (now - seen).total_seconds() if seen else float("inf"))
        yield silence

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only, never at registration


def _counts(rows: Iterable[tuple[Any, ...]]) -> list[tuple[str, int]]:
    seen = {str(status): int(count) for status, count in rows}
    return [(status, seen.get(status, 0)) for status in RUN_STATES_ALL] + [
        (status, count) for status, count in seen.items() if status not in RUN_STATES_ALL
    ]
