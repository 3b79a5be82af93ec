"""What the planning transaction writes, and how many queries it takes to write it: a new chain
is inserted with the status and finished_at that settling it would give (no lock, read and
update of the row it has just written), and planning asks the database as often for ten known
targets as for one (a target's quarantine comes with its row)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bots.engine.planning import handle_change
from chains import runstate
from chains.models import Chain, Delivery, Quarantine, Repository
from chains.status import Status
from tests.engine.conftest import Engine

PLANS = {
    "one plain target": "downstream:\n  - {key: api, project: acme/api}\n",
    "one waits for another": (
        "downstream:\n  - {key: api, project: acme/api}\n"
        "  - {key: docs, project: acme/docs, depends_on: [api]}\n"
    ),
    "a refused target": "downstream:\n  - {key: vault, project: other/vault}\n",
    "a skipped target": "downstream:\n  - {key: api, project: acme/api, skip: retired}\n",
    "async and soft-failing": (
        "downstream:\n  - {key: api, project: acme/api, strategy: async}\n"
        "  - {key: docs, project: acme/docs, soft_fail: true}\n"
    ),
    "nothing downstream": "variables: {A: b}\n",
    "an invalid file": "downstream: [nope\n",
}


@pytest.mark.parametrize("config", PLANS.values(), ids=list(PLANS))
def test_a_new_chain_is_written_with_the_status_settling_it_would_give(
    engine: Engine, config: str
) -> None:
    engine.fake.add_project("other/vault")
    engine.config(config)
    with engine.capture(execute=False):  # as committed, before anything is sent
        handle_change(engine.forge, engine.change_event(), None)
    chain = Chain.objects.get()
    written = (chain.status, chain.finished_at is not None)
    assert chain.mirror_requested_at is not None  # a mirror is asked for, as before
    with transaction.atomic():
        runstate.settle_chain(chain.pk)
    chain.refresh_from_db()
    assert written == (chain.status, chain.finished_at is not None)


def test_a_chain_whose_targets_all_fail_to_plan_is_written_finished(engine: Engine) -> None:
    engine.fake.add_project("other/vault")
    engine.config(PLANS["a refused target"])
    with engine.capture(execute=False):
        handle_change(engine.forge, engine.change_event(), None)
    chain = Chain.objects.get()
    assert chain.status == Status.FAILED and chain.finished_at is not None


def _planning_queries(engine: Engine, number: int) -> int:
    delivery = Delivery.objects.create(
        forge=engine.forge, event="Merge Request Hook", dedupe_key=f"mr-{number}", payload={}
    )
    event = engine.change_event(number=number)
    with CaptureQueriesContext(connection) as queries, engine.capture(execute=False):
        handle_change(engine.forge, event, delivery)
    return len(queries.captured_queries)


def test_planning_asks_the_database_as_often_for_ten_known_targets_as_for_one(
    engine: Engine,
) -> None:
    paths = [f"acme/t{i}" for i in range(10)]
    for path in paths:
        engine.fake.add_project(path)
    engine.config("downstream:\n" + "".join(f"  - {{project: {p}}}\n" for p in paths))
    engine.open_change(number=1)  # Baton learns the ten projects
    # One of them quarantined: its run must still say so, without a query of its own.
    Quarantine.objects.create(
        repository=Repository.objects.get(path="acme/t3"),
        reason="flaky",
        expires_at=timezone.now() + timedelta(days=1),
        created_by="ops",
    )
    ten = _planning_queries(engine, 2)
    runs = Chain.objects.get(change_number=2).runs.all()
    assert {r.key: r.quarantine_reason for r in runs if r.quarantine_reason} == {"t3": "flaky"}
    assert len(runs) == 10
    engine.config("downstream:\n  - {project: acme/t0}\n")
    assert _planning_queries(engine, 3) == ten


def test_a_delivery_handled_again_after_its_chain_was_written_starts_nothing(
    engine: Engine,
) -> None:
    """A worker that dies after the commit leaves the delivery to be handled again: the chain's
    insert (one chain per delivery) refuses, and nothing more is sent."""
    engine.config(PLANS["one plain target"])
    delivery = Delivery.objects.create(
        forge=engine.forge, event="Merge Request Hook", dedupe_key="mr-again", payload={}
    )
    first = engine.step(handle_change, engine.forge, engine.change_event(), delivery)
    engine.drain()
    again = engine.step(handle_change, engine.forge, engine.change_event(), delivery)
    engine.drain()
    assert first.startswith("chain ") and again == "chain exists already"
    chain = Chain.objects.get()
    assert chain.delivery_id == delivery.pk and chain.runs.count() == 1
    assert len(engine.fake.created()) == 1
