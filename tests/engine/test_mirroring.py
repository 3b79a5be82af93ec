"""Mirroring: one commit status per run and one for the chain on the upstream commit, and one
summary comment edited in place; each posted once per change of what the forge shows."""

from __future__ import annotations

from typing import Any

from bots.engine.planning import handle_change
from bots.forges.base import Budget
from chains.models import Chain
from chains.status import Status
from tests.engine.conftest import NEWER_SHA, SHA, Engine
from tests.fakes.forge import rate_limited, transient

TWO = """\
downstream:
  - {key: api, project: acme/api}
  - {key: docs, project: acme/docs}
"""


def _mirror(engine: Engine, chain: Chain) -> None:
    """What a worker does when the chain asks to be mirrored."""
    engine.deliver("mirror_chain", chain.pk)
    engine.drain()


def test_statuses_and_the_summary_are_posted_once_per_change(engine: Engine) -> None:
    engine.config(TWO)
    chain = engine.open_change()
    contexts = engine.fake.contexts()
    assert sorted(c for c, _ in contexts) == ["baton", "baton/api", "baton/docs"]  # once each
    assert ("baton/api", "pending") in contexts and ("baton/docs", "pending") in contexts
    assert {s["sha"] for s in engine.fake.statuses} == {SHA}
    [comment_id] = engine.fake.comments
    posted = len(engine.fake.statuses)
    comments = len(engine.fake.called("upsert_comment"))

    _mirror(engine, chain)  # nothing changed: nothing is posted again
    assert len(engine.fake.statuses) == posted
    assert len(engine.fake.called("upsert_comment")) == comments

    runs = engine.runs(chain)
    engine.pipeline(runs["api"], Status.RUNNING)
    news = engine.fake.contexts()[posted:]
    assert news[0] == ("baton/api", "running") and len(news) == len(set(news))
    assert "baton/docs" not in {c for c, _ in news}
    engine.pipeline(runs["api"], Status.SUCCESS)
    engine.pipeline(runs["docs"], Status.FAILED)
    last = {context: state for context, state in engine.fake.contexts()}
    assert last == {"baton/api": "success", "baton/docs": "failed", "baton": "failed"}
    # One comment, edited in place, that ends up saying what happened.
    assert list(engine.fake.comments) == [comment_id]
    edits = [c.args[3] for c in engine.fake.called("upsert_comment")]
    assert edits[0] is None and set(edits[1:]) == {comment_id}
    assert "acme/docs" in engine.fake.comments[comment_id]
    chain.refresh_from_db()
    assert chain.status == Status.FAILED and chain.finished_at is not None


def test_a_state_the_forge_shows_already_is_not_posted_again(engine: Engine) -> None:
    engine.config(TWO)
    chain = engine.open_change()
    runs = engine.runs(chain)
    posted = len(engine.fake.statuses)
    # queued → pending both show "pending" on GitLab: posting it would be refused.
    engine.pipeline(runs["api"], Status.PENDING)
    assert len(engine.fake.statuses) == posted


def test_a_new_commit_keeps_editing_the_same_summary(engine: Engine) -> None:
    engine.config(TWO)
    engine.config(TWO, ref=NEWER_SHA)
    engine.open_change()
    [comment_id] = engine.fake.comments
    from bots.events import ChangeAction

    second = engine.open_change(sha=NEWER_SHA, action=ChangeAction.NEW_COMMITS)
    assert list(engine.fake.comments) == [comment_id]
    assert second.summary_comment_id == comment_id
    assert {s["sha"] for s in engine.fake.statuses} == {SHA, NEWER_SHA}


def test_a_rate_limited_mirror_comes_back_when_the_forge_says(
    engine: Engine, settings: Any
) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 0
    engine.config(TWO)
    # The two runs' statuses go side by side: each attempt meets two of the forge's 429s.
    engine.fake.fail("set_commit_status", *[rate_limited(42) for _ in range(4)])
    chain = engine.open_change()
    [again] = engine.kicks.of("mirror_chain")
    assert again.countdown >= 42  # waits as asked, and a 429 is not counted as a failure
    outcome = engine.deliver("mirror_chain", chain.pk, retries=5)
    assert outcome.retried and (outcome.countdown or 0) >= 42
    engine.kicks.clear()
    _mirror(engine, chain)
    assert {c for c, _ in engine.fake.contexts()} == {"baton", "baton/api", "baton/docs"}


def test_statuses_posted_before_an_error_are_not_posted_again(engine: Engine) -> None:
    engine.config(TWO)
    engine.fake.fail("set_commit_status", transient())  # one of the two, side by side
    chain = engine.open_change()
    _mirror(engine, chain)  # the retry (if it has not come yet) posts what is missing
    assert len(engine.fake.called("set_commit_status")) == 4  # one failed, three went through
    # Each context once: the status the forge took before the error was not posted again.
    assert sorted(c for c, _ in engine.fake.contexts()) == ["baton", "baton/api", "baton/docs"]
    assert {run.mirrored_status for run in engine.runs(chain).values()} == {"pending"}


def test_a_private_target_is_not_named_on_a_public_change(engine: Engine) -> None:
    engine.fake.add_project("acme/app", public=True, id=engine.fake.projects["acme/app"].id)
    engine.config(TWO)
    event = engine.change_event()
    from dataclasses import replace

    from bots.engine.planning import handle_change

    engine.step(handle_change, engine.forge, replace(event, public=True), None)
    engine.drain()
    contexts = [c for c, _ in engine.fake.contexts()]
    assert "baton/api" not in contexts and "baton/private-1" in contexts
    for status in engine.fake.statuses:
        assert "acme/api" not in status["description"]
    body = next(iter(engine.fake.comments.values()))
    assert "acme/api" not in body and "acme/docs" not in body


def test_a_chain_waiting_for_its_next_run_keeps_showing_running(engine: Engine) -> None:
    """GitLab refuses running → pending for one status name ("Cannot transition status via
    :enqueue from :running"): when the first run ends and the one that depends on it is not
    running yet, the chain's status stays running instead of being posted as pending."""
    engine.config(
        "downstream:\n"
        "  - {key: web, project: acme/web}\n"
        "  - {key: api, project: acme/api, depends_on: [web]}\n"
    )
    chain = engine.open_change()
    runs = engine.runs(chain)
    engine.pipeline(runs["web"], Status.RUNNING)
    engine.pipeline(runs["web"], Status.SUCCESS)
    states = [state for context, state in engine.fake.contexts() if context == "baton"]
    assert "running" in states
    after_running = states[states.index("running") :]
    assert "pending" not in after_running, states
    assert len(states) == len(set(states)), states  # no state posted twice for one name


def test_a_fresh_fan_out_is_sent_before_it_is_mirrored(engine: Engine) -> None:
    """The creates go first: while a run planned moments ago waits to be sent, the mirror asks
    again a second later instead of posting (a fan-out's statuses would share the worker with
    its creates)."""
    engine.config(TWO)
    engine.step(handle_change, engine.forge, engine.change_event(), None)  # nothing sent yet
    chain = Chain.objects.get()
    assert set(chain.runs.values_list("status", flat=True)) == {Status.QUEUED}
    engine.kicks.take("mirror_chain")
    outcome = engine.deliver("mirror_chain", chain.pk)
    assert outcome.raised is None and engine.fake.statuses == []
    [again] = engine.kicks.of("mirror_chain")
    assert again.countdown == 1.0
    engine.drain()  # the sends (enqueued first), then the mirror asked again
    assert len(engine.fake.created()) == 2
    assert {c for c, _ in engine.fake.contexts()} == {"baton", "baton/api", "baton/docs"}


def test_a_run_waiting_for_others_does_not_hold_the_mirror_where_writes_are_paced(
    engine: Engine,
) -> None:
    """Only a run on its way to the forge holds the mirror back; one that waits for another
    run's pipeline may wait for as long as that runs."""
    engine.fake.write_budgets = [Budget("writes", spacing=0.001)]
    engine.config(
        "downstream:\n  - {key: api, project: acme/api}\n"
        "  - {key: web, project: acme/web, depends_on: [api]}\n"
    )
    chain = engine.open_change()
    runs = engine.runs(chain)
    assert runs["web"].status == Status.WAITING and runs["web"].not_before is None
    _mirror(engine, chain)
    assert ("baton/web", "pending") in engine.fake.contexts()
    assert ("baton/api", "pending") in engine.fake.contexts()
