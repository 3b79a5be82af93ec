"""Webhooks as they really arrive: the pipeline events of a chain shuffled, repeated (under new
delivery ids) and delayed past polling end the chain exactly where the same events in order do.

Each example opens a chain of three targets (``web`` waits for ``api``), lets the forge take
every pipeline through pending and running to an end the example picks, and delivers the events
of the pipelines in flight either in order, one by one as the forge moves, or — the forge
already at the end, as when deliveries come late — in a shuffled order with some repeated and
some held back. What is held back is reconciled by polling (the sweeper and a repository poll),
and the events held back are delivered after that, later still. Final run statuses, the chain's
status and the pipelines created must be the same both ways.

A pipeline the forge itself re-runs after it ended (a retry on the forge) is left out: an end
Baton has seen releases or skips what waits for it, so the end seen first matters there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.engine.tracking import handle_pipeline
from bots.events import PipelineEvent
from chains.models import Chain, Delivery, Run
from chains.status import Status
from tests.engine.conftest import Engine

CHAIN = """\
downstream:
  - {key: api, project: acme/api}
  - {key: docs, project: acme/docs}
  - {key: web, project: acme/web, depends_on: [api]}
"""
ENDS = (Status.SUCCESS, Status.FAILED, Status.CANCELED)
PATH = (Status.PENDING, Status.RUNNING)  # then the end
_numbers = itertools.count(1000)


@dataclass(frozen=True)
class Delivered:
    """How one event of a pipeline reaches Baton: ``copies`` times (0: held back until after
    polling), at a place in the stream given by ``order``."""

    copies: int
    order: float


delivered = st.builds(Delivered, copies=st.sampled_from([0, 1, 1, 1, 2, 3]), order=st.floats(0, 1))
# Per target: its end, and how each of its three events (pending, running, end) is delivered.
plan = st.fixed_dictionaries(
    {
        key: st.tuples(st.sampled_from(ENDS), st.lists(delivered, min_size=3, max_size=3))
        for key in ("api", "docs", "web")
    }
)


def _event(engine: Engine, run: Run, status: Status) -> None:
    pipeline = engine.fake.pipelines[(run.repository.path, run.remote_id)]
    event = PipelineEvent(
        project=run.repository.path,
        project_id=engine.fake.projects[run.repository.path].id,
        pipeline_id=run.remote_id,
        status=status,
        web_url="",
        finished_at=pipeline.finished_at if status in ENDS else None,
    )
    number = Delivery.objects.count()
    delivery = Delivery.objects.create(
        forge=engine.forge,
        event="Pipeline Hook",
        dedupe_key=f"e-{run.remote_id}-{status}-{number}",  # a new delivery id each copy
        payload={},
    )
    engine.step(handle_pipeline, engine.forge, event, delivery)
    engine.drain()


def _finish(engine: Engine, run: Run, end: Status) -> None:
    engine.fake.set_status(run.repository.path, run.remote_id, end, finished_at=timezone.now())


def _in_flight(chain: Chain, done: set[str]) -> list[Run]:
    runs = chain.runs.select_related("repository").order_by("pk")
    return [r for r in runs if r.key not in done and r.remote_id]


def _in_order(engine: Engine, ends: dict[str, Status]) -> Chain:
    engine.config(CHAIN)
    chain = engine.open_change(number=next(_numbers))
    done: set[str] = set()
    while pending := _in_flight(chain, done):
        for run in pending:
            for status in PATH:
                engine.fake.set_status(run.repository.path, run.remote_id, status)
                _event(engine, run, status)
            _finish(engine, run, ends[run.key])
            _event(engine, run, ends[run.key])
            done.add(run.key)
    return chain


def _as_they_arrive(engine: Engine, scenario: dict[str, Any]) -> Chain:
    engine.config(CHAIN)
    chain = engine.open_change(number=next(_numbers))
    done: set[str] = set()
    while pending := _in_flight(chain, done):
        stream: list[tuple[float, Run, Status]] = []
        late: list[tuple[Run, Status]] = []
        for run in pending:
            end, how = scenario[run.key]
            _finish(engine, run, end)  # the forge is done before any of it is delivered
            for status, way in zip((*PATH, end), how, strict=True):
                stream += [(way.order + i, run, status) for i in range(way.copies)]
                if way.copies == 0:
                    late.append((run, status))
            done.add(run.key)
        for _, run, status in sorted(stream, key=lambda item: item[0]):
            _event(engine, run, status)
        # What was held back: the sweeper finds the runs quiet and polls their repositories.
        long_ago = timezone.now() - timedelta(hours=1)
        Run.objects.filter(chain=chain).update(last_seen_at=long_ago)
        engine.deliver("sweep")
        engine.drain()
        for run, status in late:  # and the held-back events come in the end, very late
            _event(engine, run, status)
        chain.refresh_from_db()
    return chain


def _outcome(engine: Engine, chain: Chain) -> tuple[str, dict[str, str], dict[str, int]]:
    chain.refresh_from_db()
    runs = engine.runs(chain)
    sent = {
        k: len([p for p in engine.fake.created(r.repository.path) if p.id == r.remote_id])
        for k, r in runs.items()
    }
    return (chain.status, {k: r.status for k, r in runs.items()}, sent)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=plan)
def test_events_shuffled_repeated_and_delayed_end_where_in_order_ones_do(
    engine: Engine, scenario: dict[str, Any]
) -> None:
    ends = {key: end for key, (end, _) in scenario.items()}
    expected = _outcome(engine, _in_order(engine, ends))
    engine.kicks.clear()
    actual = _outcome(engine, _as_they_arrive(engine, scenario))
    assert actual == expected
    status, runs, _ = actual
    assert runs["api"] == ends["api"] and runs["docs"] == ends["docs"]
    assert runs["web"] == (ends["web"] if ends["api"] == Status.SUCCESS else Status.SKIPPED)
    assert status in ENDS


def test_a_late_end_of_the_attempt_before_a_retry_leaves_the_retry_alone(engine: Engine) -> None:
    from bots import services

    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change(number=next(_numbers))
    api = engine.runs(chain)["api"]
    path = api.repository.path
    ended = timezone.now() - timedelta(minutes=1)
    engine.fake.set_status(path, api.remote_id, Status.FAILED, finished_at=ended)
    _event(engine, api, Status.FAILED)
    api.refresh_from_db()
    assert api.status == Status.FAILED

    services.retry_run(api, actor=services.BATON)  # the forge re-runs the same pipeline next
    api.refresh_from_db()
    assert (api.status, api.attempt) == (Status.PENDING, 2)
    # The first attempt's end comes again (a late duplicate) before the forge has re-run it:
    # read back, the forge still says failed, as of the first attempt's end.
    _event(engine, api, Status.FAILED)
    api.refresh_from_db()
    assert api.status == Status.PENDING, "the retry was undone by the end of the attempt before"

    engine.drain()  # retry_remote: the forge re-runs it
    engine.fake.set_status(path, api.remote_id, Status.SUCCESS, finished_at=timezone.now())
    _event(engine, api, Status.SUCCESS)
    api.refresh_from_db()
    assert api.status == Status.SUCCESS
