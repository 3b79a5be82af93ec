"""Each task's retry policy, seen as a worker sees it: one delivery at a time, retried (and when)
or done. Transient forge errors are retried with a backoff, a forge's Retry-After is waited out,
permanent errors and the retry cap end the task with the reason recorded in words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from chains.models import Chain, Delivery, Identity, Run
from chains.status import Status
from tests.conftest import load_fixture
from tests.engine.conftest import APP, Engine
from tests.fakes.forge import permanent, rate_limited, transient

ONE = "downstream:\n  - {key: api, project: acme/api}\n"
MR = load_fixture("gitlab", "merge_request__open")


def _running(engine: Engine) -> tuple[Chain, Run]:
    engine.config(ONE)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    engine.pipeline(api, Status.RUNNING)
    api.refresh_from_db()
    engine.kicks.clear()
    return chain, api


def _delivery(engine: Engine) -> Delivery:
    """The merge request hook of the fixture, stored as the webhook view stores it."""
    attributes = MR["object_attributes"]
    project = MR["project"]["path_with_namespace"]
    engine.fake.add_project(project, id=str(MR["project"]["id"]))
    engine.fake.add_change(
        project,
        attributes["iid"],
        author="alice",
        head_sha=attributes["last_commit"]["id"],
        source_branch=attributes["source_branch"],
        target_branch=attributes["target_branch"],
    )
    engine.fake.add_file(project, ".baton.yml", attributes["last_commit"]["id"], ONE)
    # The fixture's actor pushed to alice's change: the chain needs both of them to be allowed.
    Identity.objects.create(forge=engine.forge, username=MR["user"]["username"], user=engine.author)
    delivery_id, _ = Delivery.objects.record(
        engine.forge, "Merge Request Hook", "mr-1", MR, handled=True
    )
    assert delivery_id is not None
    return Delivery.objects.get(pk=delivery_id)


# -- process_delivery (the router) ------------------------------------------------------------


def test_a_delivery_is_routed_to_a_chain(engine: Engine) -> None:
    delivery = _delivery(engine)
    outcome = engine.deliver("process_delivery", delivery.pk)
    assert not outcome.retried and outcome.raised is None
    delivery.refresh_from_db()
    assert delivery.outcome == Delivery.Outcome.PROCESSED and "chain" in delivery.detail
    engine.drain()
    chain = Chain.objects.get(delivery=delivery)
    assert [p.project for p in engine.fake.created()] == ["acme/api"]
    assert chain.runs.get().dispatch == Run.Dispatch.SENT
    # A second delivery of the task (a redelivery) changes nothing.
    engine.deliver("process_delivery", delivery.pk)
    assert Chain.objects.count() == 1


def test_a_delivery_with_a_transient_error_is_retried_with_a_backoff(engine: Engine) -> None:
    delivery = _delivery(engine)
    engine.fake.fail("get_change", transient())
    outcome = engine.deliver("process_delivery", delivery.pk)
    assert outcome.retried and 0 < (outcome.countdown or 0) <= 600
    delivery.refresh_from_db()
    assert delivery.processed_at is None and "502" in delivery.detail
    assert engine.deliver("process_delivery", delivery.pk, retries=1).raised is None
    assert Chain.objects.count() == 1


def test_a_delivery_waits_as_long_as_the_forge_asks(engine: Engine) -> None:
    delivery = _delivery(engine)
    engine.fake.fail("get_change", rate_limited(77))
    outcome = engine.deliver("process_delivery", delivery.pk)
    assert outcome.retried and (outcome.countdown or 0) >= 77


def test_a_delivery_gives_up_at_the_cap(engine: Engine, settings: Any) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 2
    delivery = _delivery(engine)
    engine.fake.fail("get_change", transient())
    outcome = engine.deliver("process_delivery", delivery.pk, retries=2)
    assert not outcome.retried
    delivery.refresh_from_db()
    assert delivery.outcome == Delivery.Outcome.FAILED and "502" in delivery.detail


def test_a_delivery_whose_handling_breaks_fails_in_words(engine: Engine) -> None:
    delivery = _delivery(engine)
    engine.fake.fail("get_change", KeyError("surprise"))
    outcome = engine.deliver("process_delivery", delivery.pk)
    assert not outcome.retried
    delivery.refresh_from_db()
    assert delivery.outcome == Delivery.Outcome.FAILED
    assert delivery.detail == "internal error: KeyError"


# -- trigger_run ------------------------------------------------------------------------------


def test_a_send_cut_short_by_the_time_limit_is_looked_up_next_time(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("create_pipeline", SoftTimeLimitExceeded())
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    assert "took longer" in api.error
    assert api.dispatch == Run.Dispatch.SENDING  # the sweeper takes it over once the claim ends
    Run.objects.filter(pk=api.pk).update(lease_until=None)
    engine.deliver("trigger_run", api.pk)
    assert engine.fake.called("find_pipeline")


# -- mirror_chain -----------------------------------------------------------------------------


def test_mirroring_retries_transient_errors_and_gives_up_at_the_cap(
    engine: Engine, settings: Any
) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 3
    chain, _ = _running(engine)
    Chain.objects.filter(pk=chain.pk).update(mirrored_status="")
    engine.fake.fail("set_commit_status", transient(), transient(), permanent("403 Forbidden"))
    first = engine.deliver("mirror_chain", chain.pk)
    assert first.retried and 0 < (first.countdown or 0) <= 600
    assert not engine.deliver("mirror_chain", chain.pk, retries=3).retried  # capped
    assert not engine.deliver("mirror_chain", chain.pk).retried  # permanent


# -- poll_run ---------------------------------------------------------------------------------


def test_polling_finds_the_end_of_a_quiet_run_and_never_retries(engine: Engine) -> None:
    _, api = _running(engine)
    engine.fake.set_status("acme/api", api.remote_id, Status.SUCCESS)
    engine.deliver("poll_run", api.pk)
    api.refresh_from_db()
    assert api.status == Status.SUCCESS
    engine.fake.fail("get_pipeline", transient())
    Run.objects.filter(pk=api.pk).update(status=Status.RUNNING, finished_at=None)
    outcome = engine.deliver("poll_run", api.pk)
    assert not outcome.retried and outcome.raised is None  # the sweeper polls again


def test_a_pipeline_gone_from_the_forge_ends_the_run_in_words(engine: Engine) -> None:
    chain, api = _running(engine)
    engine.fake.fail("get_pipeline", permanent("404 Not Found"))
    outcome = engine.deliver("poll_run", api.pk)
    assert not outcome.retried and outcome.raised is None
    api.refresh_from_db()
    assert api.status == Status.FAILED  # not active for ever: a retry sends a new pipeline
    assert f"pipeline {api.remote_id} is gone" in api.error and "404" in api.error
    assert Chain.objects.get(pk=chain.pk).status == Status.FAILED


def test_a_poll_that_cannot_reach_the_forge_leaves_the_run_active(engine: Engine) -> None:
    _, api = _running(engine)
    engine.fake.fail("get_pipeline", permanent("403 Forbidden", status_code=403))
    engine.deliver("poll_run", api.pk)
    api.refresh_from_db()
    assert api.status == Status.RUNNING  # only a 404 says the pipeline is gone


# -- cancel_remote / retry_remote -------------------------------------------------------------


def test_cancelling_a_pipeline_gone_from_the_forge_cancels_the_run(engine: Engine) -> None:
    _, api = _running(engine)
    Run.objects.filter(pk=api.pk).update(cancel_requested=True)
    engine.fake.fail("cancel_pipeline", permanent("404 Not Found"))
    assert not engine.deliver("cancel_remote", api.pk).retried
    api.refresh_from_db()
    assert api.status == Status.CANCELED  # nothing runs any more, as asked
    assert "is gone" in api.error


def test_a_cancel_that_finds_the_pipeline_ended_records_the_forges_end(engine: Engine) -> None:
    """Its last webhook lost, a run is still running when its chain is superseded: the cancel
    finds the pipeline green, ended minutes ago; that end (not the cancel's moment) is the run's,
    for the targets' durations (ETA, overdue checks) read from it."""
    _, api = _running(engine)
    ended = timezone.now() - timedelta(minutes=5)
    engine.fake.set_status("acme/api", api.remote_id, Status.SUCCESS, finished_at=ended)
    Run.objects.filter(pk=api.pk).update(cancel_requested=True)
    engine.deliver("cancel_remote", api.pk)
    api.refresh_from_db()
    assert api.status == Status.SUCCESS
    assert api.finished_at == ended


@pytest.mark.parametrize("task", ["cancel_remote", "retry_remote"])
def test_remote_actions_retry_transient_errors(engine: Engine, task: str) -> None:
    _, api = _running(engine)
    method = "cancel_pipeline" if task == "cancel_remote" else "retry_pipeline"
    engine.fake.fail(method, rate_limited(12))
    outcome = engine.deliver(task, api.pk)
    assert outcome.retried and (outcome.countdown or 0) >= 12
    engine.fake.fail(method, transient())
    outcome = engine.deliver(task, api.pk, retries=1)
    assert outcome.retried and 0 < (outcome.countdown or 0) <= 600


def test_a_cancel_the_forge_refuses_is_recorded(engine: Engine) -> None:
    _, api = _running(engine)
    engine.fake.fail("cancel_pipeline", permanent("403 Forbidden", status_code=403))
    assert not engine.deliver("cancel_remote", api.pk).retried
    api.refresh_from_db()
    assert api.error == "could not cancel: 403 Forbidden"


def test_a_retry_the_forge_refuses_fails_the_run(engine: Engine, settings: Any) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 1
    _, api = _running(engine)
    engine.fake.fail("retry_pipeline", transient())
    assert not engine.deliver("retry_remote", api.pk, retries=1).retried  # capped
    api.refresh_from_db()
    assert api.status == Status.FAILED and api.error == "could not retry: 502 Bad Gateway"


# -- rerun_chain / start_for_comment / expand_run ----------------------------------------------


def test_a_rerun_retries_transient_errors_and_gives_up_on_permanent_ones(engine: Engine) -> None:
    chain, _ = _running(engine)
    engine.fake.fail("get_change", rate_limited(9))
    outcome = engine.deliver("rerun_chain", chain.pk, "alice")
    assert outcome.retried and (outcome.countdown or 0) >= 9
    engine.fake.fail("get_change", permanent())
    assert not engine.deliver("rerun_chain", chain.pk, "alice").retried
    assert Chain.objects.count() == 1
    engine.deliver("rerun_chain", chain.pk, "alice")
    assert Chain.objects.count() == 2  # planned again, the old chain superseded


def test_start_for_comment_retries_then_starts(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.add_change(APP, 7, head_sha="a" * 40)
    engine.fake.fail("get_change", transient())
    args = (engine.forge.pk, APP, 7, "alice", None)
    outcome = engine.deliver("start_for_comment", *args)
    assert outcome.retried and not Chain.objects.exists()
    engine.fake.fail("get_change", permanent())
    assert not engine.deliver("start_for_comment", *args).retried
    assert not Chain.objects.exists()
    engine.deliver("start_for_comment", *args)
    assert Chain.objects.get().change_number == 7


def test_expanding_a_run_retries_transient_errors_up_to_the_cap(
    engine: Engine, settings: Any
) -> None:
    settings.BATON_MAX_FORGE_RETRIES = 2
    settings.BATON_DOWNSTREAM_CONFIG_TTL = 0  # each delivery reads the file again
    _, api = _running(engine)
    engine.fake.fail("read_file", transient(), transient())
    assert engine.deliver("expand_run", api.pk).retried
    assert not engine.deliver("expand_run", api.pk, retries=2).retried
    engine.fake.add_file(
        "acme/api",
        ".baton.yml",
        "main",
        "downstream:\n  - {key: web, project: acme/web, on: [upstream]}\n",
    )
    engine.deliver("expand_run", api.pk)
    assert api.children.get().key == "web"


# -- sweep --------------------------------------------------------------------------------------


def test_the_sweeper_hands_out_what_was_left_behind(engine: Engine, settings: Any) -> None:
    settings.BATON_STALE_AFTER = 1.0
    _, api = _running(engine)
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=1)
    Run.objects.filter(pk=api.pk).update(last_seen_at=long_ago, created_at=long_ago)
    engine.deliver("sweep")
    # A run the forge has identified is polled with all of its repository's open runs.
    pending = [(k.name, k.args) for k in engine.kicks.pending]
    assert ("poll_repository", (api.repository_id,)) in pending
