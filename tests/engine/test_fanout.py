"""A fan-out (bots/engine/fanout.py): many runs claimed, sent and recorded a chunk at a time,
each still exactly once, through errors, uncertain answers, redeliveries and a worker that dies
mid-chunk."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from bots import kicks, throttle
from bots.engine import fanout
from bots.engine.planning import handle_change
from bots.forges.base import Budget
from chains.models import AuditEvent, Chain, Repository, Run
from chains.status import Status
from tests.engine.conftest import Engine
from tests.fakes.forge import permanent, rate_limited, transient, uncertain

THREE = """\
downstream:
  - {key: api, project: acme/api}
  - {key: docs, project: acme/docs}
  - {key: web, project: acme/web}
"""


@pytest.fixture(autouse=True)
def _fan_out_from_two(monkeypatch: Any) -> None:
    """Three targets make a fan-out here (in production, from ``kicks.BATCH_FROM``)."""
    monkeypatch.setattr(kicks, "BATCH_FROM", 2)


class WorkerKilled(BaseException):
    """Stands in for a worker that dies: nothing after it runs in the process."""


def _sent_once_each(engine: Engine, chain: Chain) -> None:
    runs = engine.runs(chain)
    for key, project in (("api", "acme/api"), ("docs", "acme/docs"), ("web", "acme/web")):
        run = runs[key]
        [pipeline] = engine.fake.created(project)
        assert (run.dispatch, run.remote_id, run.ref) == (Run.Dispatch.SENT, pipeline.id, "main")
        assert pipeline.variables["BATON_RUN_NONCE"] == run.nonce


def test_a_fan_out_sends_each_target_once_from_one_task(engine: Engine) -> None:
    engine.config(THREE)
    chain = engine.open_change()
    assert engine.kicks.names().count("trigger_runs") == 1
    assert "trigger_run" not in engine.kicks.names()
    _sent_once_each(engine, chain)
    assert AuditEvent.objects.filter(action="run.trigger", chain=chain).count() == 3
    # New targets were confirmed on the forge once each (their default branch with them) ...
    assert len(engine.fake.called("get_project")) == 3
    assert set(Repository.objects.filter(path__startswith="acme/").values_list("path", flat=True))
    # ... and a redelivery of the task (or the sweeper) sends nothing again.
    ids = [r.pk for r in engine.runs(chain).values()]
    engine.deliver("trigger_runs", ids)
    engine.deliver("trigger_run", ids[0])
    assert len(engine.fake.called("create_pipeline")) == 3


def test_known_targets_need_no_project_look_up(engine: Engine) -> None:
    engine.config(THREE)
    engine.open_change()
    engine.open_change(number=8)
    assert len(engine.fake.called("get_project")) == 3  # the first chain's, none for the second
    assert len(engine.fake.called("create_pipeline")) == 6


def test_a_target_that_fails_is_retried_alone_and_the_others_go(engine: Engine) -> None:
    engine.config(THREE)
    engine.fake.fail("create_pipeline", transient())
    chain = engine.open_change()
    runs = engine.runs(chain).values()
    failed = [r for r in runs if r.dispatch != Run.Dispatch.SENT]
    assert len(failed) == 1 and failed[0].status == Status.QUEUED
    assert "will retry" in failed[0].error
    [retry] = engine.kicks.of("trigger_run")
    assert retry.args == (failed[0].pk,) and retry.countdown > 0
    Run.objects.filter(pk=failed[0].pk).update(not_before=None)
    engine.deliver("trigger_run", failed[0].pk)
    _sent_once_each(engine, chain)


def test_a_permanent_refusal_fails_that_run_in_words(engine: Engine) -> None:
    engine.config(THREE)
    engine.fake.fail("create_pipeline", permanent("403 Forbidden", 403))
    chain = engine.open_change()
    failed = [r for r in engine.runs(chain).values() if r.status == Status.FAILED]
    assert len(failed) == 1 and "403" in failed[0].error
    assert len(engine.fake.created()) == 2


def test_a_rate_limit_blocks_the_budget_and_waits(engine: Engine) -> None:
    engine.config(THREE)
    engine.fake.fail("create_pipeline", rate_limited(30.0))
    chain = engine.open_change()
    waiting = [r for r in engine.runs(chain).values() if r.status == Status.WAITING]
    assert len(waiting) == 1 and "rate limit" in waiting[0].error
    assert len(engine.fake.created()) == 2


def test_an_uncertain_send_is_looked_up_not_resent(engine: Engine) -> None:
    engine.config(THREE)
    engine.fake.fail("create_pipeline", uncertain(), after_effect=True)
    chain = engine.open_change()
    [unsure] = [r for r in engine.runs(chain).values() if r.dispatch != Run.Dispatch.SENT]
    assert unsure.dispatch == Run.Dispatch.SENDING
    assert len(engine.fake.created()) == 3  # it did reach the forge
    Run.objects.filter(pk=unsure.pk).update(not_before=None, lease_until=None)
    engine.deliver("trigger_run", unsure.pk)
    assert engine.fake.called("find_pipeline")
    _sent_once_each(engine, chain)


def test_a_worker_that_dies_mid_chunk_loses_nothing_and_sends_nothing_twice(
    engine: Engine, monkeypatch: Any
) -> None:
    engine.config(THREE)
    engine.step(handle_change, engine.forge, engine.change_event(), None)
    [kick] = engine.kicks.take("trigger_runs")

    def dies(*args: Any) -> None:
        raise WorkerKilled  # the creates reached the forge; nothing was recorded

    record_many = fanout.record_many
    monkeypatch.setattr(fanout, "record_many", dies)
    with contextlib.suppress(WorkerKilled):
        engine.deliver("trigger_runs", *kick.args)
    monkeypatch.setattr(fanout, "record_many", record_many)
    runs = list(Run.objects.order_by("pk"))
    assert all(r.dispatch == Run.Dispatch.SENDING for r in runs)  # claimed, outcome unknown
    assert len(engine.fake.created()) == 3
    # A redelivery while the claims hold sends nothing.
    engine.deliver("trigger_runs", *kick.args)
    assert len(engine.fake.created()) == 3
    # The claims run out; the sweeper hands each run to the one-at-a-time path, which looks.
    Run.objects.update(lease_until=None)
    for run in runs:
        engine.deliver("trigger_run", run.pk)
    assert len(engine.fake.created()) == 3
    _sent_once_each(engine, Chain.objects.get())


def test_runs_a_fan_out_cannot_send_plainly_go_one_at_a_time(engine: Engine) -> None:
    engine.config(
        """\
downstream:
  - {key: api, project: acme/api}
  - {key: docs, project: acme/docs, depends_on: [api]}
  - {key: web, project: acme/web, wait: true}
"""
    )
    chain = engine.open_change()
    runs = engine.runs(chain)
    assert runs["api"].dispatch == Run.Dispatch.SENT
    assert runs["web"].dispatch == Run.Dispatch.SENT  # through ``trigger``: it looked first
    assert engine.fake.called("recent_pipelines")
    assert "trigger_run" in engine.kicks.names()


def test_reserving_many_gives_the_times_one_by_one_would(db: None) -> None:
    budgets = [Budget("b:create:x@main", per_minute=2), Budget("b:create:y@main", per_minute=2)]
    requests = [[budgets[0]], [budgets[0]], [budgets[0]], [budgets[1]]]
    times = throttle.reserve_many(requests, now=1000.0)
    assert times[:2] == [1000.0, 1000.0]
    assert times[2] == 1060.0  # the third in a minute waits for the first to leave the window
    assert times[3] == 1000.0
    assert throttle.reserve([budgets[1]], now=1000.0) == 1000.0
    assert throttle.reserve([budgets[1]], now=1000.0) == 1060.0


def test_chunks_are_no_bigger_than_the_send_threads(engine: Engine, monkeypatch: Any) -> None:
    monkeypatch.setattr(fanout, "SEND_THREADS", 2)
    engine.config(THREE)
    chain = engine.open_change()
    _sent_once_each(engine, chain)


ONE = "downstream:\n  - {key: api, project: acme/api}\n"


def test_a_single_known_target_is_sent_by_the_planning_task_itself(engine: Engine) -> None:
    """Issue 12, F3: no queue trip and no claim transaction of its own; the run is written
    claimed with its chain."""
    engine.config(ONE)
    engine.open_change()  # the target becomes known (its default branch with it)
    engine.kicks.clear()
    detail = engine.step(handle_change, engine.forge, engine.change_event(number=8), None)
    assert "trigger_run" not in engine.kicks.names() and "trigger_runs" not in engine.kicks.names()
    run = Run.objects.get(chain__change_number=8)
    [pipeline] = engine.fake.created("acme/api")[1:]
    assert (run.dispatch, run.remote_id, run.send_attempts) == (Run.Dispatch.SENT, pipeline.id, 1)
    assert pipeline.variables["BATON_RUN_NONCE"] == run.nonce, detail


def test_a_worker_that_dies_before_the_planning_tasks_send_leaves_it_to_the_sweeper(
    engine: Engine, monkeypatch: Any
) -> None:
    engine.config(ONE)
    engine.open_change()

    def dies(*args: Any) -> None:
        raise WorkerKilled  # after the chain's commit, before (or during) the create call

    send_claimed = fanout.send_claimed
    monkeypatch.setattr(fanout, "send_claimed", dies)
    with contextlib.suppress(WorkerKilled):
        engine.step(handle_change, engine.forge, engine.change_event(number=8), None)
    monkeypatch.setattr(fanout, "send_claimed", send_claimed)
    run = Run.objects.get(chain__change_number=8)
    assert run.dispatch == Run.Dispatch.SENDING and run.lease_until is not None  # claimed
    engine.deliver("trigger_run", run.pk)  # the sweeper too early: the claim holds
    assert len(engine.fake.created("acme/api")) == 1
    Run.objects.filter(pk=run.pk).update(lease_until=None, sent_at=None)  # ran out, long ago
    engine.deliver("trigger_run", run.pk)  # looks for the pipeline first, finds none, sends
    engine.drain()
    run.refresh_from_db()
    assert engine.fake.called("find_pipeline")
    assert len(engine.fake.created("acme/api")) == 2 and run.dispatch == Run.Dispatch.SENT
