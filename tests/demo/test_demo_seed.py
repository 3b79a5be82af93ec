"""`make run`'s seeded demo (demo/seed.py, demo/history.py, demo/world.py): the history is
written once a day whatever the number of starts, it gives every demo target an ETA and per-day
points for the plots, the quarantine is in force, and the demo's `.baton.yml` files are valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.utils import timezone

from chains import eta, quarantine, runstate
from chains.config import parse_config
from chains.models import Chain, Quarantine, Repository, Run, RunAttempt
from chains.status import Status
from dashboard import health
from demo import history, seed, world
from tests.chains.test_docs_examples import Yaml12Loader

pytestmark = pytest.mark.django_db

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "baton-yml.schema.json").read_text()
)
NOW = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)


@pytest.fixture
def repositories() -> dict[str, Repository]:
    seed.forges("http://127.0.0.1:1", "http://127.0.0.1:2")
    found = seed.repositories(
        {
            path: world.Project(str(n), f"http://127.0.0.1:1/{path}", "main")
            for n, path in enumerate([*world.GITLAB_PROJECTS, world.DOCS], start=1)
        }
    )
    seed.quarantined(found[world.E2E])
    return found


def rows() -> list[tuple[Any, ...]]:
    chains = Chain.objects.order_by("pk").values_list(
        "pk", "status", "created_at", "finished_at", "head_sha", "change_number"
    )
    runs = Run.objects.order_by("pk").values_list(
        "pk",
        "chain_id",
        "parent_id",
        "key",
        "status",
        "attempt",
        "started_at",
        "finished_at",
        "failed_jobs",
        "soft_fail",
    )
    attempts = RunAttempt.objects.order_by("pk").values_list("run_id", "number", "status")
    return [*chains, *runs, *attempts]


def test_seeding_again_the_same_day_changes_nothing(repositories: dict[str, Repository]) -> None:
    written = history.seed(repositories, now=NOW)
    assert written == history.DAYS * history.CHAINS_PER_DAY + history.DAYS // history.RELEASE_EVERY
    first = rows()
    assert history.seed(repositories, now=NOW + timedelta(hours=12)) == 0
    assert rows() == first
    seed.quarantined(repositories[world.E2E])
    assert Quarantine.objects.count() == 1


def test_a_later_day_replaces_the_history_and_leaves_other_chains_alone(
    repositories: dict[str, Repository],
) -> None:
    history.seed(repositories, now=NOW)
    live = live_chain(repositories)
    count = Chain.objects.count()
    assert history.seed(repositories, now=NOW + timedelta(days=2)) > 0
    assert Chain.objects.count() == count
    assert Chain.objects.filter(pk=live.pk).exists()
    newest = Chain.objects.filter(reason=history.REASON).latest("created_at").created_at
    assert newest.date() == (NOW + timedelta(days=1)).date()


def live_chain(repositories: dict[str, Repository]) -> Chain:
    """A chain of acme/app!1 as the demo's first commit plans it, its runs not sent yet."""
    app = repositories[world.APP]
    chain = Chain.objects.create(
        forge_id=app.forge_id,
        repository=app,
        change_number=1,
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/1/head",
        reason="merge request opened",
        status=Status.RUNNING,
    )
    runs: dict[str, Run] = {}
    for key, path, parent, strategy in (
        ("api", world.API, None, Run.Strategy.DEPEND),
        ("web", world.WEB, None, Run.Strategy.DEPEND),
        ("e2e", world.E2E, None, Run.Strategy.DEPEND),
        ("checks", world.APP, None, Run.Strategy.ASYNC),
        ("docs", world.DOCS, "api", Run.Strategy.DEPEND),
    ):
        run = Run(
            chain=chain,
            key=key,
            repository=repositories[path],
            ref="" if path != world.APP else "refs/merge-requests/1/head",
            strategy=strategy,
            parent=runs.get(parent or ""),
            depth=2 if parent else 1,
        )
        runstate.initial(run, waits=parent is not None)
        run.save()
        runs[key] = run
    return chain


def test_the_history_gives_the_demo_chain_an_eta(repositories: dict[str, Repository]) -> None:
    live = live_chain(repositories)
    assert not eta.for_chain(live, now=NOW).known  # no history: no estimate
    history.seed(repositories, now=NOW)
    estimate = eta.for_chain(live, now=NOW)
    assert estimate.known, estimate.missing
    assert estimate.p50 is not None and estimate.p90 is not None
    # The nested docs run starts when api's pipeline (the longest, about 62 s) has finished
    # (chains/eta.py), and the 90 % figure is later than the median.
    took = (estimate.p50 - NOW).total_seconds()
    timings = world.TIMINGS
    path = timings[world.API].running + timings[world.DOCS].running
    assert 0.8 < took / path < 1.3
    assert estimate.p90 > estimate.p50


def test_the_history_gives_per_day_points_and_marks(repositories: dict[str, Repository]) -> None:
    history.seed(repositories, now=NOW)
    # The history fills the DAYS days before today; the window of DAYS + 1 days ends today.
    found = health.health(None, days=history.DAYS + 1, now=NOW)
    by_path = {t.repository.path: t for t in found.targets}
    assert set(by_path) >= {world.API, world.DOCS, world.WEB, world.E2E, world.PACKAGES}
    for path in (world.API, world.DOCS, world.WEB, world.E2E):
        days = by_path[path].days
        assert sum(1 for d in days if d.successes + d.failures) == history.DAYS, path
        green = [d for d in days if d.p50 is not None and d.p90 is not None]
        # acme/e2e fails one run in three: a day may have no green run to time.
        assert len(green) >= (history.DAYS if path != world.E2E else history.DAYS // 2), path
    assert sum(d.failures for d in by_path[world.E2E].days) > 0
    assert "flaky" in by_path[world.WEB].marks
    assert "quarantined" in by_path[world.E2E].marks
    assert all(
        sum(d.successes for d in by_path[p].days) >= history.DAYS
        for p in (world.API, world.WEB, world.DOCS)
    )


def test_the_quarantine_is_in_force(repositories: dict[str, Repository]) -> None:
    found = quarantine.active(repositories[world.E2E])
    assert found is not None
    assert found.reason == world.QUARANTINE_REASON
    assert found.expires_at > timezone.now() + timedelta(days=world.QUARANTINE_DAYS - 1)
    assert quarantine.active(repositories[world.WEB]) is None


def test_past_runs_are_what_the_engine_leaves(repositories: dict[str, Repository]) -> None:
    history.seed(repositories, now=NOW)
    seeded = Run.objects.filter(chain__reason=history.REASON)
    retried = seeded.filter(key="web", status=Status.SUCCESS, attempt=2)
    assert retried.exists()
    for run in retried:
        (earlier,) = run.attempts.all()
        assert (earlier.number, earlier.status) == (1, Status.FAILED)
        assert earlier.finished_at is not None and run.started_at is not None
        assert earlier.finished_at < run.started_at
        assert run.retried_for == "script_failure"
    for run in seeded.filter(status=Status.FAILED):
        assert run.failed_jobs["attempt"] == run.attempt
        assert run.failed_jobs["jobs"][0]["reason"]
    for run in seeded.filter(key="docs").exclude(parent__status=Status.SUCCESS):
        assert run.status == Status.SKIPPED and "did not succeed" in run.error
    since = NOW.replace(hour=0, minute=0) - timedelta(days=4)
    held = seeded.filter(key="e2e", chain__created_at__gte=since)
    assert held.exists() and all(r.soft_fail and r.quarantine_reason for r in held)
    for chain in Chain.objects.filter(reason=history.REASON).prefetch_related("runs"):
        hard = [r for r in chain.runs.all() if r.status == Status.FAILED and not r.soft_fail]
        assert chain.status == (Status.FAILED if hard else Status.SUCCESS), chain.pk
        assert chain.finished_at is not None and chain.created_at < chain.finished_at < NOW


@pytest.mark.parametrize("text", [world.APP_BATON_YML, world.API_BATON_YML])
def test_the_demo_files_are_valid(text: str) -> None:
    config = parse_config(text)
    assert config.downstream
    document = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    errors = [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)]
    assert errors == []


def test_the_flaky_target_is_retried_on_its_failure_reason() -> None:
    targets = {t.key: t for t in parse_config(world.APP_BATON_YML).downstream}
    assert targets["web"].retry.max == 2
    assert world.WEB_FAILURE.failure_reason in targets["web"].retry.when
    docs = parse_config(world.API_BATON_YML).downstream[0]
    assert docs.project == f"github:{world.DOCS}"
