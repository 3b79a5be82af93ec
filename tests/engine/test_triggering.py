"""Triggering: each run reaches its forge exactly once, through uncertain answers, claims held by
other workers, rate limits and errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from chains.models import Run
from chains.status import Status
from tests.engine.conftest import Engine
from tests.fakes.forge import permanent, rate_limited, transient, uncertain

ONE = """\
downstream:
  - {key: api, project: acme/api, ref: main}
"""


def _due_now(run: Run) -> None:
    """Time passes: the run's retry is due, and its last send is older than the look-up grace
    (the test does not wait for either)."""
    long_ago = timedelta(seconds=settings.BATON_LOOKUP_GRACE + 1)
    Run.objects.filter(pk=run.pk).update(
        not_before=None, lease_until=None, sent_at=F("sent_at") - long_ago
    )


def _trigger(engine: Engine, run: Run) -> Run:
    engine.deliver("trigger_run", run.pk)
    engine.drain()
    run.refresh_from_db()
    return run


def test_a_run_is_sent_once_with_its_marker(engine: Engine) -> None:
    engine.config(ONE)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    [create] = engine.fake.called("create_pipeline")
    project, ref, variables = create.args
    assert (project, ref) == ("acme/api", "main")
    assert variables["BATON_RUN_ID"] == str(api.pk)
    assert variables["BATON_RUN_NONCE"] == api.nonce and api.nonce
    assert variables["UPSTREAM_SHA"] == "a" * 40
    assert (api.dispatch, api.status) == (Run.Dispatch.SENT, Status.PENDING)
    assert api.remote_id == engine.fake.created()[0].id
    # A second delivery of the same task (a redelivery, the sweeper) sends nothing.
    _trigger(engine, api)
    assert len(engine.fake.called("create_pipeline")) == 1


def test_an_uncertain_send_is_looked_up_and_adopted_not_resent(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("create_pipeline", uncertain(), after_effect=True)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    assert api.dispatch == Run.Dispatch.SENDING  # nobody knows whether it went
    assert api.status == Status.QUEUED and "may have acted" in api.error
    [reached] = engine.fake.created()
    _due_now(api)
    api = _trigger(engine, api)
    assert len(engine.fake.called("create_pipeline")) == 1  # looked up, not resent
    assert engine.fake.called("find_pipeline")
    assert (api.remote_id, api.dispatch) == (reached.id, Run.Dispatch.SENT)


def test_a_failing_look_up_keeps_the_send_uncertain(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("create_pipeline", uncertain(), after_effect=True)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    nonce = api.nonce
    engine.fake.fail("find_pipeline", transient("500 Internal Server Error"))
    _due_now(api)
    api = _trigger(engine, api)
    assert len(engine.fake.called("create_pipeline")) == 1
    assert api.dispatch == Run.Dispatch.SENDING and api.nonce == nonce
    assert api.status == Status.QUEUED and "500" in api.error


def test_a_look_up_that_finds_nothing_sends_again_with_the_same_marker(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("create_pipeline", uncertain())  # lost before it reached the forge
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    assert engine.fake.created() == []
    nonce = api.nonce
    _due_now(api)
    api = _trigger(engine, api)
    assert len(engine.fake.called("find_pipeline")) == 1
    [sent] = engine.fake.created()
    assert sent.variables["BATON_RUN_NONCE"] == nonce
    assert (api.remote_id, api.dispatch) == (sent.id, Run.Dispatch.SENT)


def test_an_empty_look_up_soon_after_the_send_is_not_believed_yet(engine: Engine) -> None:
    """A forge may list a run some time after it answered the send (GitHub creates a
    repository_dispatch run afterwards): within BATON_LOOKUP_GRACE of the send an empty look-up
    means "look again later", not "send again"."""
    engine.config(ONE)
    engine.fake.fail("create_pipeline", uncertain())
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    Run.objects.filter(pk=api.pk).update(not_before=None, lease_until=None)  # sent just now
    api = _trigger(engine, api)
    assert len(engine.fake.called("find_pipeline")) == 1
    assert engine.fake.created() == []  # not sent again
    assert api.dispatch == Run.Dispatch.SENDING  # still uncertain
    assert api.sent_at is not None and api.lease_until is not None
    assert api.lease_until >= api.sent_at + timedelta(seconds=settings.BATON_LOOKUP_GRACE)
    _due_now(api)  # the grace has passed: now an empty look-up is believed
    api = _trigger(engine, api)
    [sent] = engine.fake.created()
    assert (api.remote_id, api.dispatch) == (sent.id, Run.Dispatch.SENT)


def test_a_claim_taken_over_while_waiting_is_not_sent(engine: Engine) -> None:
    """Fencing: a worker whose claim ran out while it waited (another worker has claimed the
    run since) does not send; only the newer claim does."""
    from bots.engine import triggering

    engine.config(ONE)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    api.refresh_from_db()
    Run.objects.filter(pk=api.pk).update(
        dispatch=Run.Dispatch.SENDING, send_attempts=api.send_attempts + 1
    )
    assert triggering._still_ours(api) is False
    api.refresh_from_db()
    assert triggering._still_ours(api) is True


def test_a_claim_held_by_another_worker_is_left_alone(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("create_pipeline", uncertain(), after_effect=True)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    # Another worker claimed it and is sending right now.
    Run.objects.filter(pk=api.pk).update(
        not_before=None, lease_until=timezone.now() + timedelta(seconds=30)
    )
    calls = len(engine.fake.calls)
    _trigger(engine, api)
    assert len(engine.fake.calls) == calls  # no look-up, no send
    # Its claim runs out (the worker died): this one looks up before it sends.
    _due_now(api)
    api = _trigger(engine, api)
    assert len(engine.fake.called("create_pipeline")) == 1
    assert api.dispatch == Run.Dispatch.SENT


def test_two_claims_of_one_run_send_once(engine: Engine) -> None:
    engine.config(ONE)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    # The trigger was enqueued twice (the planner and the sweeper): both deliveries run.
    engine.deliver("trigger_run", api.pk)
    engine.deliver("trigger_run", api.pk)
    assert len(engine.fake.called("create_pipeline")) == 1


def test_a_rate_limit_waits_as_long_as_the_forge_asks_and_is_not_a_failure(
    engine: Engine, settings: Any
) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 1
    engine.config(ONE)
    engine.fake.fail("create_pipeline", *(rate_limited(30) for _ in range(4)))
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    for _ in range(3):
        assert api.status == Status.WAITING, api.error
        assert "rate limit" in api.error
        assert api.not_before is not None
        wait = (api.not_before - timezone.now()).total_seconds()
        assert 28 <= wait <= 31
        [again] = engine.kicks.take("trigger_run")
        assert again.countdown >= 29  # comes back when the forge said, not before
        _due_now(api)
        api = _trigger(engine, api)
    _due_now(api)
    api = _trigger(engine, api)
    assert (api.status, api.dispatch) == (Status.PENDING, Run.Dispatch.SENT)
    assert len(engine.fake.created()) == 1


def test_transient_errors_are_retried_then_fail_in_words(engine: Engine, settings: Any) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 1
    engine.config(ONE)
    engine.fake.fail("create_pipeline", transient(), transient("503 Service Unavailable"))
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    assert api.status == Status.QUEUED and "will retry" in api.error
    _due_now(api)
    api = _trigger(engine, api)
    assert api.status == Status.FAILED and "503" in api.error
    assert engine.fake.created() == []


def test_a_permanent_error_fails_the_run_at_once(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("create_pipeline", permanent("404 Project Not Found"))
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    assert api.status == Status.FAILED and "404" in api.error
    assert engine.kicks.of("trigger_run") == []
    assert ("baton/api", "failed") in engine.fake.contexts()


@pytest.mark.parametrize("fault", [transient(), rate_limited(5)])
def test_a_run_sent_too_often_is_parked(engine: Engine, settings: Any, fault: Any) -> None:
    settings.BATON_MAX_RUN_ATTEMPTS = 2
    engine.config(ONE)
    engine.fake.fail("create_pipeline", fault, fault)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    _due_now(api)
    api = _trigger(engine, api)
    _due_now(api)
    api = _trigger(engine, api)
    assert api.status == Status.FAILED and "gave up after 2 attempts" in api.error
    assert len(engine.fake.called("create_pipeline")) == 2
