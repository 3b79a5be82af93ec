"""`/metrics`: who may read it, and what the families count (bots/metrics.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bots import logcontext, metrics, router
from bots.engine import tracking, triggering
from bots.forges.base import ForgeError, RemotePipeline
from bots.forges.github import GitHubForge
from bots.forges.gitlab import GitLabForge
from chains.models import Chain, Delivery, Forge, Repository, Run
from chains.status import Status
from config import observability
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

HOST: dict[str, Any] = {"HTTP_HOST": "127.0.0.1"}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Client, **extra: Any) -> dict[str, Any]:
    response = client.get("/metrics", **{**HOST, "REMOTE_ADDR": "127.0.0.1", **extra})
    assert response.status_code == 200, response.content
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


@pytest.fixture
def forge() -> Forge:
    # The webhook's forge cache is emptied by tests/conftest.py before each test.
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="glpat-secret-token",
        webhook_secret="hook-secret",
    )


# --- access -------------------------------------------------------------------------------------


def test_allowed_from_the_machine_itself_by_default_when_debug(client: Client) -> None:
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **HOST).status_code == 200
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", **HOST)
    assert response.status_code == 403
    assert b"BATON_METRICS_TOKEN" in response.content


def test_a_token_lets_in_from_anywhere_and_a_wrong_one_does_not(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BATON_METRICS_TOKEN = "scrape-secret"
    settings.BATON_METRICS_ALLOW = []
    ok = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-secret", **HOST
    )
    assert ok.status_code == 200
    wrong = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer nope", **HOST)
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    missing = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **HOST)
    assert missing.status_code == 401


def test_allowed_networks(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    import ipaddress

    settings.BATON_METRICS_ALLOW = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **HOST).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.1", **HOST).status_code == 403


def test_off_without_token_or_allowed_addresses(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BATON_METRICS_ALLOW = []
    settings.BATON_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **HOST).status_code == 404


def test_allow_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from config import settings as module

    monkeypatch.setenv("BATON_METRICS_ALLOW", "10.0.0.0/8,not-an-address")
    with pytest.raises(ImproperlyConfigured, match="BATON_METRICS_ALLOW: 'not-an-address'"):
        module._networks("BATON_METRICS_ALLOW", [])


# --- what the families count --------------------------------------------------------------------


def test_webhooks_are_counted_by_forge_event_and_result(client: Client, forge: Forge) -> None:
    body = json.dumps(load_fixture("gitlab", "merge_request__open"))
    labels = {"forge": "gl", "event": "Merge Request Hook"}
    before = {
        r: value("baton_webhooks_received_total", **labels, result=r)
        for r in ("accepted", "duplicate")
    }
    seen = value("baton_intake_seconds_count", forge="gl")
    headers = {
        "X-Gitlab-Token": "hook-secret",
        "X-Gitlab-Event": "Merge Request Hook",
        "Idempotency-Key": "m-1",
    }
    for _ in range(2):
        client.post("/hooks/gl/", data=body, content_type="application/json", headers=headers)
    client.post(
        "/hooks/gl/",
        data=body,
        content_type="application/json",
        headers={**headers, "X-Gitlab-Token": "wrong"},
    )
    client.post(
        "/hooks/gl/",
        data=body,
        content_type="application/json",
        headers={**headers, "X-Gitlab-Event": "Made Up \u2603 Hook", "Idempotency-Key": "m-2"},
    )
    assert value("baton_webhooks_received_total", **labels, result="accepted") == (
        before["accepted"] + 1
    )
    assert value("baton_webhooks_received_total", **labels, result="duplicate") == (
        before["duplicate"] + 1
    )
    # Before the signature is checked the event is not believed; unhandled ones are "other".
    received = "baton_webhooks_received_total"
    assert value(received, forge="gl", event="unknown", result="unauthenticated") >= 1
    assert value(received, forge="gl", event="other", result="ignored") >= 1
    assert value("baton_intake_seconds_count", forge="gl") == seen + 4


def test_unknown_slugs_do_not_become_labels(client: Client) -> None:
    client.post("/hooks/made-up-forge-name/", data="{}", content_type="application/json")
    scraped = scrape(client)
    labels = {s.labels.get("forge") for s in scraped["baton_webhooks_received"].samples}
    assert "made-up-forge-name" not in labels and "unknown" in labels


def test_deliveries_handled_are_counted_by_outcome(forge: Forge) -> None:
    delivery_id, _ = Delivery.objects.record(forge, "Push Hook", "p-1", {}, handled=True)
    assert delivery_id is not None
    before = value("baton_deliveries_total", forge="gl", event="Push Hook", outcome="failed")
    router.fail(delivery_id, "broken")
    router.fail(delivery_id, "broken again")  # already finished: not counted twice
    after = value("baton_deliveries_total", forge="gl", event="Push Hook", outcome="failed")
    assert after == before + 1


@responses.activate
def test_github_requests_latency_errors_and_rate_limit_waits() -> None:
    api = "http://github.test:80/api/v3"
    forge = GitHubForge(api, "ghp_x", timeout=2, name="gh-corp")
    responses.get(
        f"{api}/repos/acme/site",
        json={"id": 1, "full_name": "acme/site", "default_branch": "main", "html_url": "x"},
        headers={"x-ratelimit-remaining": "4321"},
    )
    forge.get_project("acme/site")
    assert value("baton_forge_rate_limit_remaining", forge="gh-corp") == 4321
    assert value("baton_forge_requests_total", forge="gh-corp", method="GET", status="2xx") == 1
    assert value("baton_forge_request_seconds_count", forge="gh-corp") == 1

    responses.post(
        f"{api}/repos/acme/site/dispatches",
        status=403,
        json={"message": "You have exceeded a secondary rate limit."},
    )
    with pytest.raises(ForgeError):
        forge.create_pipeline("acme/site", "main", {"A": "1"})
    assert value("baton_forge_errors_total", forge="gh-corp", kind="rate_limited") == 1
    assert value("baton_forge_rate_limit_wait_seconds_total", forge="gh-corp") == 60
    assert value("baton_forge_requests_total", forge="gh-corp", method="POST", status="4xx") == 1


@responses.activate
def test_gitlab_requests_are_counted_through_the_session_hook() -> None:
    url = "http://gitlab.test"
    forge = GitLabForge(url, "tok", timeout=2, name="gl-corp")
    responses.post(
        f"{url}/api/v4/projects/acme%2Fapi/pipeline",
        status=429,
        headers={"Retry-After": "7", "RateLimit-Remaining": "0"},
        json={"message": "slow down"},
    )
    with pytest.raises(ForgeError):
        forge.create_pipeline("acme/api", "main", {})
    assert value("baton_forge_requests_total", forge="gl-corp", method="POST", status="4xx") == 1
    assert value("baton_forge_errors_total", forge="gl-corp", kind="rate_limited") == 1
    assert value("baton_forge_rate_limit_wait_seconds_total", forge="gl-corp") == 7
    assert value("baton_forge_rate_limit_remaining", forge="gl-corp") == 0
    responses.get(f"{url}/api/v4/projects/acme%2Fgone", status=500)
    with pytest.raises(ForgeError):
        forge.get_project("acme/gone")
    assert value("baton_forge_errors_total", forge="gl-corp", kind="server") == 1


def test_gitlab_connection_errors_are_counted() -> None:
    forge = GitLabForge("http://127.0.0.1:1", "tok", timeout=1, name="gl-down")
    with pytest.raises(ForgeError):
        forge.get_project("acme/api")
    assert value("baton_forge_errors_total", forge="gl-down", kind="connection") == 1


def test_runs_chains_open_and_polled_runs_come_from_the_database(
    client: Client, forge: Forge
) -> None:
    repo = Repository.objects.create(forge=forge, path="acme/app")
    chain = Chain.objects.create(
        forge=forge, repository=repo, head_sha="a" * 40, upstream_ref="main", status="running"
    )
    long_ago = timezone.now() - timedelta(days=1)
    for key, status, dispatch, seen in [
        ("a", "running", Run.Dispatch.SENT, timezone.now()),
        ("b", "running", Run.Dispatch.SENT, long_ago),
        ("c", "queued", Run.Dispatch.IDLE, None),
        ("d", "success", Run.Dispatch.SENT, long_ago),
    ]:
        Run.objects.create(
            chain=chain,
            repository=repo,
            key=key,
            status=status,
            dispatch=dispatch,
            last_seen_at=seen,
        )
    Delivery.objects.record(forge, "Push Hook", "q-1", {}, handled=True)
    scraped = scrape(client)

    def sample(family: str, **labels: str) -> float:
        return next(
            s.value
            for s in scraped[family].samples
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert sample("baton_runs", status="running") == 2
    assert sample("baton_runs", status="queued") == 1
    assert sample("baton_runs", status="canceled") == 0  # every status, so rates work
    assert sample("baton_chains", status="running") == 1
    assert sample("baton_runs_open") == 2
    assert sample("baton_runs_polled") == 1  # only the quiet one
    assert sample("baton_deliveries_queued") == 1
    assert sample("baton_last_delivery_timestamp_seconds", forge="gl") > 0


def test_triggers_are_counted_by_forge_and_result(forge: Forge) -> None:
    repo = Repository.objects.create(forge=forge, path="acme/api")
    chain = Chain.objects.create(forge=forge, repository=repo, head_sha="b" * 40, upstream_ref="m")
    run = Run.objects.create(chain=chain, repository=repo, key="api")
    before = value("baton_triggers_total", forge="gl", result="triggered")
    tracking.record_triggered(
        run.pk, RemotePipeline(id="9", status=Status.PENDING, web_url=""), "main"
    )
    assert value("baton_triggers_total", forge="gl", result="triggered") == before + 1
    run = Run.objects.select_related("repository__forge").get(pk=run.pk)
    failed = value("baton_triggers_total", forge="gl", result="failed")
    triggering._trigger_failed(run, ForgeError("no such project", permanent=True))
    assert value("baton_triggers_total", forge="gl", result="failed") == failed + 1


# --- Celery: queue wait, run time, retries, ids across processes ------------------------------


class FakeRequest:
    is_eager = False
    eta = None

    def __init__(self, headers: dict[str, Any]):
        self.headers = headers


class FakeTask:
    name = "bots.tasks.trigger_run"

    def __init__(self, headers: dict[str, Any]):
        self.request = FakeRequest(headers)

    def run(self, run_id: int) -> None:
        pass


def test_published_tasks_carry_ids_and_the_worker_sets_them(forge: Forge) -> None:
    headers: dict[str, Any] = {}
    with logcontext.bound(delivery_id=3, chain_id=4, run_id=8):
        observability._stamp(headers=headers)
    assert headers[logcontext.HEADER] == {"delivery_id": 3, "chain_id": 4}  # not its run
    headers[observability.SENT_AT] -= 2.0  # queued two seconds ago
    waits = value("baton_queue_wait_seconds_count", task=FakeTask.name)
    slow = value("baton_queue_wait_seconds_bucket", task=FakeTask.name, le="1.0")
    runs = value("baton_task_seconds_count", task=FakeTask.name, state="SUCCESS")
    with logcontext.bound(run_id=99):  # the caller's ids come back afterwards
        observability._task_starts(task_id="t-1", task=FakeTask(headers), args=(12,), kwargs={})
        assert logcontext.current() == {"delivery_id": 3, "chain_id": 4, "run_id": 12}
        observability._task_ends(task_id="t-1", task=FakeTask(headers), state="SUCCESS")
        assert logcontext.current() == {"run_id": 99}
    assert value("baton_queue_wait_seconds_count", task=FakeTask.name) == waits + 1
    assert value("baton_queue_wait_seconds_bucket", task=FakeTask.name, le="1.0") == slow
    assert value("baton_task_seconds_count", task=FakeTask.name, state="SUCCESS") == runs + 1


def test_a_run_task_finds_its_chain(forge: Forge) -> None:
    repo = Repository.objects.create(forge=forge, path="acme/api")
    chain = Chain.objects.create(forge=forge, repository=repo, head_sha="c" * 40, upstream_ref="m")
    run = Run.objects.create(chain=chain, repository=repo, key="api")
    observability._task_starts(task_id="t-2", task=FakeTask({}), args=(run.pk,), kwargs={})
    try:
        assert logcontext.current() == {"chain_id": chain.pk, "run_id": run.pk}
    finally:
        observability._task_ends(task_id="t-2", task=FakeTask({}), state="SUCCESS")
    # Queued by another chain's work (a newer chain cancelling this one's runs): its own chain.
    queued_by = {logcontext.HEADER: {"delivery_id": 5, "chain_id": chain.pk + 100}}
    observability._task_starts(task_id="t-3", task=FakeTask(queued_by), args=(run.pk,), kwargs={})
    try:
        assert logcontext.current() == {"delivery_id": 5, "chain_id": chain.pk, "run_id": run.pk}
    finally:
        observability._task_ends(task_id="t-3", task=FakeTask({}), state="SUCCESS")


def test_retries_are_counted() -> None:
    before = value("baton_task_retries_total", task=FakeTask.name)
    observability._task_retries(sender=FakeTask({}))
    assert value("baton_task_retries_total", task=FakeTask.name) == before + 1


def test_status_class() -> None:
    assert [metrics.status_class(s) for s in (None, 200, 304, 404, 503)] == [
        "error",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
    ]


def test_a_forge_whose_webhooks_went_quiet_shows_its_silence(client: Client, forge: Forge) -> None:
    repo = Repository.objects.create(forge=forge, path="acme/app")
    chain = Chain.objects.create(
        forge=forge, repository=repo, head_sha="a" * 40, upstream_ref="main", status="running"
    )
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    Run.objects.create(
        chain=chain,
        repository=repo,
        key="a",
        status="running",
        dispatch=Run.Dispatch.SENT,
        remote_id="5",
        hooked=True,
        triggered_at=ten_minutes_ago,
        last_seen_at=ten_minutes_ago,
    )
    Forge.objects.filter(pk=forge.pk).update(hooks_seen_at=ten_minutes_ago)
    scraped = scrape(client)
    (silence,) = scraped["baton_forge_hook_silence_seconds"].samples
    assert silence.labels == {"forge": "gl"} and 590 < silence.value < 700
    (polled,) = scraped["baton_runs_polled"].samples
    assert polled.value == 1  # hooked, but its forge is silent: polled at BATON_POLL_AFTER

    Forge.objects.filter(pk=forge.pk).update(hooks_seen_at=timezone.now())
    scraped = scrape(client)
    assert not scraped["baton_forge_hook_silence_seconds"].samples
    assert scraped["baton_runs_polled"].samples[0].value == 0
