"""Downstream health: the aggregates (per-day p50/p90 of successful runs, failure rate per
target), their query counts, the charts, the pages and the API, and what a reader may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from chains.models import Chain, Run
from chains.status import Status
from dashboard import charts, health
from tests import factories as f

pytestmark = pytest.mark.django_db


def viewer_user() -> User:
    person = f.persona("viewer")
    assert person is not None
    return person


def admin_user() -> User:
    person = f.persona("admin")
    assert person is not None
    return person


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def finished(chain: Chain, key: str, status: str, seconds: float, days_ago: int, **kw: Any) -> Run:
    run = f.run(chain, key, status=status, seconds=seconds, **kw)
    end = NOW - timedelta(days=days_ago, hours=1)
    Run.objects.filter(pk=run.pk).update(
        started_at=end - timedelta(seconds=seconds), triggered_at=end, finished_at=end
    )
    Run.objects.filter(pk=run.pk).update(triggered_at=end - timedelta(seconds=seconds + 5))
    return run


def seed(targets: int, per_day: int) -> Chain:
    """``targets`` downstream projects, each with ``per_day`` runs on each of three days."""
    last = None
    for t in range(targets):
        for day in range(3):
            chain = f.chain("acme/app", age=timedelta(days=day))
            for i in range(per_day):
                status = Status.FAILED if i == 0 else Status.SUCCESS
                finished(chain, f"t{t}-{i}", status, 60 * (i + 1), day, project=f"acme/t{t}")
            last = chain
    assert last is not None
    return last


def test_percentiles_per_day_and_failure_rate() -> None:
    chain = f.chain("acme/app")
    for seconds in (60, 120, 180, 600):
        finished(chain, f"api-{seconds}", Status.SUCCESS, seconds, 0, project="acme/api")
    finished(chain, "api-bad", Status.FAILED, 30, 0, project="acme/api")
    finished(chain, "api-old", Status.SUCCESS, 1000, 1, project="acme/api")
    finished(chain, "api-gone", Status.CANCELED, 5, 0, project="acme/api")  # counts as neither
    finished(chain, "api-ancient", Status.FAILED, 5, 40, project="acme/api")  # outside
    found = health.health(None, days=7, now=NOW)
    (api,) = found.targets
    assert api.repository.path == "acme/api"
    assert (api.runs, api.failures) == (6, 1)
    assert api.failure_rate == pytest.approx(1 / 6)
    today = api.days[-1]
    assert today.date == NOW.date() and (today.successes, today.failures) == (4, 1)
    # percentile_cont: linear interpolation between ranks
    assert today.p50 == pytest.approx(150.0)
    assert today.p90 == pytest.approx(600 - 0.3 * (600 - 180))
    assert api.days[-2].p50 == pytest.approx(1000.0)
    assert len(api.days) == 7 and api.days[0].p50 is None
    assert api.p50 == pytest.approx(180.0)  # over the window: 60, 120, 180, 600, 1000


@pytest.mark.parametrize(("targets", "per_day"), [(1, 2), (6, 5)])
def test_queries_do_not_grow_with_runs_or_targets(targets: int, per_day: int) -> None:
    seed(targets, per_day)
    with CaptureQueriesContext(connection) as queries:
        found = health.health(None, days=14, now=NOW)
    assert len(found.targets) == targets
    assert len(queries) == 3  # the aggregate (one pass on PostgreSQL), the names, the marks


def test_only_runs_the_reader_may_view_count() -> None:
    app = f.chain("acme/app")
    finished(app, "api", Status.SUCCESS, 60, 0, project="acme/api")
    finished(app, "vault", Status.FAILED, 60, 0, project="secret/vault")
    hidden_upstream = f.chain("secret/tools")
    finished(hidden_upstream, "api2", Status.FAILED, 60, 0, project="acme/api")
    viewer = f.persona("viewer")
    from chains.policy import visible_repository_ids

    found = health.health(visible_repository_ids(viewer), days=7, now=NOW)
    assert [t.repository.path for t in found.targets] == ["acme/api"]
    assert found.targets[0].failures == 0  # the hidden chain's run does not count


def test_quarantined_and_flaky_targets_are_marked() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from chains.models import Quarantine, RunAttempt
    from dashboard.health_presenter import health_data, health_page

    chain = f.chain("acme/app")
    api = finished(chain, "api", Status.SUCCESS, 60, 0, project="acme/api")
    web = finished(chain, "web", Status.SUCCESS, 60, 0, project="acme/web")
    Quarantine.objects.create(
        repository_id=api.repository_id,
        reason="flaky runners",
        expires_at=timezone.now() + timedelta(days=3),
    )
    # web failed, then passed on a retry of the same commit: flaky.
    RunAttempt.objects.create(run=web, number=1, status=Status.FAILED)
    type(web).objects.filter(pk=web.pk).update(attempt=2)

    found = health.health(None, days=7, now=NOW)
    page = health_page(found)
    assert page.marks == {api.repository_id: ("quarantined",), web.repository_id: ("flaky",)}
    by_name = {t["project"]: t["marks"] for t in health_data(found)["targets"]}
    assert by_name == {"acme/api": ["quarantined"], "acme/web": ["flaky"]}
    assert "quarantined" in str(page.failures)


def test_window_days_is_bounded() -> None:
    assert health.window_days("3") == 3
    assert health.window_days("0") == 1
    assert health.window_days("99999") == health.MAX_DAYS
    assert health.window_days("x") == health.DEFAULT_DAYS
    assert health.window_days(None) == health.DEFAULT_DAYS


def test_charts_say_it_in_words_and_escape_names() -> None:
    day = NOW.date()
    svg = str(
        charts.duration_chart(
            "<script>x</script>",
            [charts.Point(day, 65, 245, 3, 1), charts.Point(day, None, None, 0, 0)],
        )
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "1 min 05 s" in svg and "4 min 05 s" in svg
    bars = str(charts.failure_chart([charts.Bar("acme/api", 1, 4, ("flaky",))], 14))
    assert "25 % (1 of 4 failed) · flaky" in bars


# --- pages ---------------------------------------------------------------------------------------


def test_health_page_shows_charts_and_hides_private_names() -> None:
    app = f.chain("acme/app")
    finished(app, "api", Status.SUCCESS, 90, 0, project="acme/api")
    finished(app, "vault", Status.FAILED, 60, 0, project="secret/vault")
    client = Client()
    client.force_login(viewer_user())
    html = client.get("/health/").content.decode()
    assert "acme/api" in html and "<svg" in html and "Failure rate per downstream target" in html
    assert "secret/vault" not in html and "vault" not in html
    admin = Client()
    admin.force_login(admin_user())
    assert "secret/vault" in admin.get("/health/?days=30").content.decode()


def test_repository_page_has_its_downstream_health() -> None:
    app = f.chain("acme/app")
    finished(app, "api", Status.SUCCESS, 90, 0, project="acme/api")
    finished(app, "vault", Status.FAILED, 60, 0, project="secret/vault")
    client = Client()
    client.force_login(viewer_user())
    html = client.get(f"/repositories/{app.repository_id}/").content.decode()
    assert "Downstream health" in html and "acme/api" in html and "<svg" in html
    assert "secret/vault" not in html
    assert f"/repositories/{app.repository_id}/config/" in html


def test_repository_index_lists_only_visible_repositories_with_latest_status() -> None:
    old = f.chain("acme/app", status=Status.FAILED, age=timedelta(hours=2))
    new = f.chain("acme/app", status=Status.SUCCESS, age=timedelta(minutes=1))
    f.chain("secret/vault")
    client = Client()
    client.force_login(viewer_user())
    response = client.get("/repositories/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "acme/app" in html and f"chain {new.pk}" in html and f"chain {old.pk}<" not in html
    assert "secret/vault" not in html
    assert 'href="/repositories/"' in html  # the nav links to it


def test_repository_index_query_count_constant() -> None:
    for i in range(8):
        f.chain(f"acme/app{i}")
    client = Client()
    client.force_login(viewer_user())
    with CaptureQueriesContext(connection) as few:
        client.get("/repositories/")
    for i in range(8, 20):
        f.chain(f"acme/app{i}")
        f.chain(f"acme/app{i}")
    with CaptureQueriesContext(connection) as many:
        client.get("/repositories/")
    assert len(few) == len(many)


# --- the API -------------------------------------------------------------------------------------


def api(persona: str) -> APIClient:
    from django.contrib.auth.models import User

    name = f.ROLES[persona][0] if persona in f.ROLES else ""
    existing = User.objects.filter(username=name).first()
    user = existing or f.persona(persona)
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {f.token(user)}")
    return client


def test_api_gives_the_numbers_the_charts_draw() -> None:
    app = f.chain("acme/app")
    finished(app, "api1", Status.SUCCESS, 60, 0, project="acme/api")
    finished(app, "api2", Status.SUCCESS, 120, 0, project="acme/api")
    finished(app, "api3", Status.FAILED, 10, 0, project="acme/api")
    finished(app, "vault", Status.FAILED, 60, 0, project="secret/vault")
    data = api("viewer").get("/api/v1/health/?days=3").json()
    assert data["days"] == 3
    (target,) = data["targets"]
    assert target["project"] == "acme/api"
    assert (target["runs"], target["failures"]) == (3, 1)
    assert target["failure_rate"] == pytest.approx(0.3333, abs=1e-4)
    assert target["p50_seconds"] == pytest.approx(90.0)
    assert len(target["per_day"]) == 3 and target["marks"] == []
    assert "secret" not in str(data)
    repo = api("viewer").get(f"/api/v1/repositories/{app.repository_id}/health/").json()
    assert [t["project"] for t in repo["targets"]] == ["acme/api"]


def test_api_refuses_anonymous_and_hidden_repositories() -> None:
    vault = f.chain("secret/vault")
    assert api("anonymous").get("/api/v1/health/").status_code == 401
    assert (
        api("viewer").get(f"/api/v1/repositories/{vault.repository_id}/health/").status_code == 404
    )


@pytest.mark.parametrize(("targets", "per_day"), [(1, 1), (6, 4)])
def test_health_page_and_api_queries_are_pinned(
    targets: int, per_day: int, django_assert_num_queries: Any
) -> None:
    seed(targets, per_day)
    viewer = viewer_user()
    client = Client()
    client.force_login(viewer)
    # session, user, repositories and grants (what the reader may view), then the health:
    # per day and per window in one pass (SQLite: the durations), the targets' names, the marks
    aggregates = 3
    with django_assert_num_queries(4 + aggregates):
        assert client.get("/health/").status_code == 200
    token = APIClient()
    token.force_authenticate(viewer)
    with django_assert_num_queries(2 + aggregates):  # repositories and grants, then the health
        assert token.get("/api/v1/health/").status_code == 200
