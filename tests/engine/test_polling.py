"""Polling when webhooks are lost (bots/engine/polling.py): one list call per repository for all
its open runs, the run-by-run reads only when that answer was cut short, and hook silence — a
forge with open runs and no delivery for BATON_HOOK_SILENCE has all its open runs polled at
BATON_POLL_AFTER instead of BATON_POLL_AFTER_HOOKED."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from bots.engine import polling
from chains.models import Chain, Delivery, Forge, Run
from chains.status import Status
from tests.engine.conftest import Engine
from tests.fakes.forge import permanent

FOUR = """\
downstream:
  - {key: a1, project: acme/api, variables: {N: "1"}}
  - {key: a2, project: acme/api, variables: {N: "2"}}
  - {key: a3, project: acme/api, variables: {N: "3"}}
  - {key: docs, project: acme/docs}
"""


def _open(engine: Engine) -> tuple[Chain, dict[str, Run]]:
    engine.config(FOUR)
    chain = engine.open_change()
    runs = engine.runs(chain)
    for run in runs.values():
        engine.pipeline(run, Status.RUNNING)  # hooked: webhooks arrive
    engine.kicks.clear()
    return chain, engine.runs(chain)


def _quiet(chain: Chain, seconds: float) -> None:
    """No news of the chain's runs for that long (the forge's pipelines changed after)."""
    past = timezone.now() - timedelta(seconds=seconds)
    Run.objects.filter(chain=chain).update(last_seen_at=past, triggered_at=past)


def _calls(engine: Engine, method: str) -> int:
    return len(engine.fake.called(method))


def test_one_list_call_per_repository_answers_for_all_its_open_runs(
    engine: Engine, settings: Any
) -> None:
    chain, runs = _open(engine)
    engine.fake.set_status("acme/api", runs["a1"].remote_id, Status.SUCCESS)
    engine.fake.set_status("acme/api", runs["a3"].remote_id, Status.FAILED)
    _quiet(chain, settings.BATON_POLL_AFTER_HOOKED + 5)
    engine.deliver("sweep")
    polls = [k for k in engine.kicks.pending if k.name.startswith("poll_")]
    assert sorted(k.args[0] for k in polls) == sorted(
        {runs["a1"].repository_id, runs["docs"].repository_id}
    )
    before_get = _calls(engine, "get_pipeline")
    engine.drain()
    assert _calls(engine, "changed_pipelines") == 2  # acme/api and acme/docs, once each
    assert _calls(engine, "get_pipeline") == before_get  # no read per run
    statuses = {k: r.status for k, r in engine.runs(chain).items()}
    assert statuses == {
        "a1": Status.SUCCESS,
        "a2": Status.RUNNING,
        "a3": Status.FAILED,
        "docs": Status.RUNNING,
    }
    # Polled: the runs are not due again before BATON_POLL_AFTER_HOOKED.
    assert polling.due() == ([], [])


def test_the_list_asks_from_the_oldest_news_of_the_open_runs(engine: Engine, settings: Any) -> None:
    chain, runs = _open(engine)
    _quiet(chain, settings.BATON_POLL_AFTER_HOOKED + 5)
    Run.objects.filter(pk=runs["a2"].pk).update(last_seen_at=timezone.now())
    polling.poll_repository(runs["a1"].repository_id)
    (call,) = engine.fake.called("changed_pipelines")
    oldest = Run.objects.get(pk=runs["a1"].pk).triggered_at
    assert oldest is not None
    skew = timedelta(seconds=settings.BATON_MARKER_CLOCK_SKEW)
    assert call.kwargs["updated_after"] == oldest - skew


def test_a_list_cut_short_is_completed_run_by_run(engine: Engine, settings: Any) -> None:
    chain, runs = _open(engine)
    engine.fake.page = 1  # one pipeline per answer: the answer is cut short
    for key in ("a1", "a2", "a3"):
        engine.fake.set_status("acme/api", runs[key].remote_id, Status.SUCCESS)
    _quiet(chain, settings.BATON_POLL_AFTER_HOOKED + 5)
    calls = polling.poll_repository(runs["a1"].repository_id)
    assert calls == 3  # the list, then the two runs it did not show
    assert {r.status for k, r in engine.runs(chain).items() if k != "docs"} == {Status.SUCCESS}


def test_a_pipeline_gone_from_the_forge_stops_no_other_runs_poll(
    engine: Engine, settings: Any
) -> None:
    chain, runs = _open(engine)
    engine.fake.page = 1  # one pipeline per answer: the others are read one by one
    for key in ("a1", "a2", "a3"):
        engine.fake.set_status("acme/api", runs[key].remote_id, Status.SUCCESS)
    _quiet(chain, settings.BATON_POLL_AFTER_HOOKED + 5)
    engine.fake.fail("get_pipeline", permanent("404 Not Found"))  # the first one read is gone
    assert polling.poll_repository(runs["a1"].repository_id) == 3
    statuses = sorted(r.status for k, r in engine.runs(chain).items() if k != "docs")
    assert statuses == [Status.FAILED, Status.SUCCESS, Status.SUCCESS]
    (ended,) = [r for k, r in engine.runs(chain).items() if r.status == Status.FAILED]
    assert "is gone" in ended.error


def test_a_run_that_finished_meanwhile_is_not_moved_back(engine: Engine, settings: Any) -> None:
    chain, runs = _open(engine)
    _quiet(chain, settings.BATON_POLL_AFTER_HOOKED + 5)
    engine.fake.set_status("acme/api", runs["a1"].remote_id, Status.RUNNING)
    engine.pipeline(runs["a1"], Status.SUCCESS)
    engine.fake.set_status("acme/api", runs["a1"].remote_id, Status.RUNNING)  # a stale answer
    polling.poll_repository(runs["a1"].repository_id)
    assert Run.objects.get(pk=runs["a1"].pk).status == Status.SUCCESS


def test_a_silent_forge_has_its_hooked_runs_polled_within_a_minute(
    engine: Engine, settings: Any
) -> None:
    chain, runs = _open(engine)
    assert settings.BATON_POLL_AFTER < settings.BATON_POLL_AFTER_HOOKED
    polling.note_hooks()
    forge = Forge.objects.get(pk=engine.forge.pk)
    assert forge.hooks_seen_at is not None  # the deliveries of _open
    assert polling.silence_of(forge) is None

    # Quiet for longer than BATON_POLL_AFTER, but webhooks still arrive: not due yet.
    _quiet(chain, settings.BATON_POLL_AFTER + 5)
    assert polling.due() == ([], [])

    # No delivery from the forge for longer than BATON_HOOK_SILENCE: every open run is due.
    silent_since = timezone.now() - timedelta(seconds=settings.BATON_HOOK_SILENCE + 130)
    Forge.objects.filter(pk=forge.pk).update(hooks_seen_at=silent_since)
    Delivery.objects.update(received_at=silent_since)
    polling.note_hooks()
    silence = polling.silence_of(forge)
    assert silence is not None
    assert silence.message() == "no webhooks from GitLab for 3 minutes"
    repositories, lookups = polling.due()
    assert sorted(repositories) == sorted({r.repository_id for r in runs.values()})
    assert lookups == []

    # A delivery arrives: the forge speaks again.
    Delivery.objects.create(forge=forge, event="Push Hook", dedupe_key="new", payload={})
    polling.note_hooks()
    assert polling.silence_of(forge) is None
    assert polling.due() == ([], [])


def test_a_forge_without_open_runs_is_never_silent(engine: Engine) -> None:
    _, runs = _open(engine)
    for run in runs.values():
        engine.pipeline(run, Status.SUCCESS)
    Forge.objects.filter(pk=engine.forge.pk).update(hooks_seen_at=None)
    Delivery.objects.all().delete()
    assert not polling.silent_forges().exists()


def test_a_repository_with_more_open_runs_than_one_poll_covers_is_polled_in_turns(
    engine: Engine, settings: Any, monkeypatch: Any
) -> None:
    chain, runs = _open(engine)
    monkeypatch.setattr(polling, "MAX_POLLED", 2)
    _quiet(chain, settings.BATON_POLL_AFTER_HOOKED + 5)
    a3 = runs["a3"]
    Run.objects.filter(pk=a3.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=settings.BATON_POLL_AFTER_HOOKED + 1)
    )  # heard of last of the three, but still due
    polling.poll_repository(a3.repository_id)
    seen = {
        key: at.timestamp() if at else 0.0
        for key, at in Run.objects.filter(chain=chain).values_list("key", "last_seen_at")
    }
    assert seen["a1"] > seen["a3"] and seen["a2"] > seen["a3"]  # the two longest unheard
    polling.poll_repository(a3.repository_id)
    after = Run.objects.get(pk=a3.pk).last_seen_at
    assert after is not None and after.timestamp() > seen["a3"]  # its turn came
