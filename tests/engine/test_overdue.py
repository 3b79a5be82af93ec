"""A run whose last webhook is lost is noticed when it should have ended (bots/engine/overdue.py):
a webhook saying it started asks for one check at its start plus the longest but one of its
target's recent runs plus BATON_OVERDUE_GRACE; the check polls the repository only if the run
is still open and nothing was heard of it since."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bots.engine.tracking import handle_pipeline
from bots.events import PipelineEvent
from chains.models import Chain, Delivery, Run, RunAttempt
from chains.status import Status
from tests.engine.conftest import Engine

TARGETS = """\
downstream:
  - {key: a1, project: acme/api, variables: {N: "1"}}
  - {key: a2, project: acme/api, variables: {N: "2"}}
  - {key: a3, project: acme/api, variables: {N: "3"}}
  - {key: docs, project: acme/docs}
"""


def _history(engine: Engine, seconds: list[float]) -> None:
    """acme/api's earlier runs, ended green after ``seconds`` each."""
    engine.config(TARGETS)
    chain = engine.open_change(number=1)
    ended = timezone.now() - timedelta(minutes=5)
    for run, took in zip(
        Run.objects.filter(chain=chain, key__startswith="a").order_by("key"), seconds, strict=False
    ):
        Run.objects.filter(pk=run.pk).update(
            status=Status.SUCCESS, started_at=ended - timedelta(seconds=took), finished_at=ended
        )
    engine.kicks.pending.clear()


def _started(engine: Engine) -> dict[str, Run]:
    chain = engine.open_change(number=2)
    runs = engine.runs(chain)
    engine.pipeline(runs["a1"], Status.RUNNING)
    return engine.runs(chain)


def _checks(engine: Engine) -> list[Any]:
    return [k for k in engine.kicks.pending if k.name == "check_end"]


def _lists(engine: Engine) -> int:
    return len(engine.fake.called("changed_pipelines"))


def test_a_run_heard_to_start_is_checked_when_its_targets_runs_have_ended(
    engine: Engine, settings: Any
) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    runs = _started(engine)
    (check,) = _checks(engine)
    run_id, attempt, due_at = check.args
    assert (run_id, attempt) == (runs["a1"].pk, 1)
    # Just started: due after the longest but one of the recent runs, checked a grace later.
    assert check.countdown == pytest.approx(25.0 + settings.BATON_OVERDUE_GRACE, abs=1.0)
    assert due_at == pytest.approx(time.time() + 25.0, abs=1.0)


def test_one_odd_run_does_not_count(engine: Engine) -> None:
    """One run that sat an hour in a runner's queue does not make every check an hour late."""
    _history(engine, [20.0, 3600.0, 25.0])
    runs = _started(engine)
    (check,) = _checks(engine)
    assert check.args[0] == runs["a1"].pk
    assert check.countdown == pytest.approx(25.0 + 1.0, abs=1.0)


def test_the_check_counts_from_the_forges_start_of_a_first_attempt(engine: Engine) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    chain = engine.open_change(number=2)
    run = engine.runs(chain)["a1"]
    Run.objects.filter(pk=run.pk).update(
        status=Status.PENDING, started_at=timezone.now() - timedelta(seconds=12)
    )
    engine.pipeline(run, Status.RUNNING)
    (check,) = _checks(engine)
    assert check.countdown == pytest.approx(13.0 + 1.0, abs=1.0)


def test_a_lost_last_webhook_is_made_up_by_one_list_call_at_the_check(engine: Engine) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    runs = _started(engine)
    (check,) = _checks(engine)
    engine.kicks.pending.remove(check)
    engine.fake.set_status("acme/api", runs["a1"].remote_id, Status.SUCCESS)  # its hook is lost
    before = _lists(engine)
    engine.deliver("check_end", check.args[0], check.args[1], time.time())
    engine.drain()
    assert _lists(engine) == before + 1
    assert Run.objects.get(pk=runs["a1"].pk).status == Status.SUCCESS


def test_a_check_before_the_run_is_due_does_nothing(engine: Engine) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    runs = _started(engine)
    engine.fake.set_status("acme/api", runs["a1"].remote_id, Status.SUCCESS)
    before = _lists(engine)
    engine.deliver("check_end", runs["a1"].pk, 1, time.time() + 30)
    assert _lists(engine) == before


def test_a_run_that_ended_in_time_costs_no_forge_call(engine: Engine) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    runs = _started(engine)
    (check,) = _checks(engine)
    engine.kicks.pending.remove(check)
    engine.pipeline(runs["a1"], Status.SUCCESS)  # the webhook came
    before = _lists(engine)
    engine.deliver("check_end", *check.args[:2], time.time())
    assert _lists(engine) == before


def test_a_run_heard_of_since_it_was_due_is_not_polled_again(engine: Engine) -> None:
    """Two runs of one repository due together: the first check's poll answers for both."""
    _history(engine, [20.0, 30.0, 25.0])
    chain = engine.open_change(number=2)
    runs = engine.runs(chain)
    for key in ("a1", "a2"):
        engine.pipeline(runs[key], Status.RUNNING)
    first, second = _checks(engine)
    due_at = time.time()
    before = _lists(engine)
    engine.deliver("check_end", *first.args[:2], due_at)
    engine.deliver("check_end", *second.args[:2], due_at)
    assert _lists(engine) == before + 1


def test_a_retried_attempt_is_checked_from_its_retry(engine: Engine, settings: Any) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    runs = _started(engine)
    engine.kicks.pending.clear()
    run = runs["a1"]
    # The forge dates the retried pipeline from its first creation, long before.
    Run.objects.filter(pk=run.pk).update(
        attempt=2, status=Status.PENDING, started_at=timezone.now() - timedelta(hours=1)
    )
    engine.pipeline(run, Status.RUNNING)
    (check,) = _checks(engine)
    assert check.args[1] == 2
    assert check.countdown == pytest.approx(25.0 + settings.BATON_OVERDUE_GRACE, abs=1.0)
    # A check for the first attempt finds nothing to do.
    before = _lists(engine)
    engine.deliver("check_end", run.pk, 1, time.time())
    assert _lists(engine) == before


def test_no_check_without_history_or_for_runs_longer_than_the_hooked_poll(
    engine: Engine, settings: Any
) -> None:
    _history(engine, [20.0, 30.0])  # two runs say little
    _started(engine)
    assert _checks(engine) == []
    settings.BATON_POLL_AFTER_HOOKED = 25.0  # the ordinary poll comes before the check would
    Run.objects.filter(chain__change_number=1, key="a3").update(
        status=Status.SUCCESS,
        started_at=timezone.now() - timedelta(seconds=40),
        finished_at=timezone.now() - timedelta(seconds=10),
    )
    chain = engine.open_change(number=3)
    engine.pipeline(engine.runs(chain)["a2"], Status.RUNNING)
    assert _checks(engine) == []


def test_news_from_a_poll_asks_for_no_check(engine: Engine) -> None:
    _history(engine, [20.0, 30.0, 25.0])
    chain: Chain = engine.open_change(number=2)
    engine.pipeline(engine.runs(chain)["a1"], Status.RUNNING, hooked=False)
    assert _checks(engine) == []


def test_a_retried_pipelines_first_start_is_not_the_new_attempts(engine: Engine) -> None:
    """GitLab's pipeline hook dates a retried pipeline from its first creation: the new attempt
    starts no earlier than the last one ended, so the target's durations (and so the checks and
    the ETA) do not count the first attempt twice."""
    engine.config(TARGETS)
    chain = engine.open_change(number=2)
    run = engine.runs(chain)["a1"]
    first_start = timezone.now() - timedelta(minutes=10)
    first_end = timezone.now() - timedelta(minutes=1)
    RunAttempt.objects.create(
        run=run, number=1, status="failed", started_at=first_start, finished_at=first_end
    )
    Run.objects.filter(pk=run.pk).update(attempt=2, status=Status.PENDING, started_at=None)
    engine.fake.set_status("acme/api", run.remote_id, Status.RUNNING)
    event = PipelineEvent(
        project="acme/api",
        project_id=engine.fake.projects["acme/api"].id,
        pipeline_id=run.remote_id,
        status=Status.RUNNING,
        web_url="",
        started_at=first_start,
    )
    hook = Delivery.objects.create(
        forge=engine.forge, event="Pipeline Hook", dedupe_key="r2", payload={}
    )
    engine.step(handle_pipeline, engine.forge, event, hook)
    assert Run.objects.get(pk=run.pk).started_at == first_end
