"""Flaky downstreams: a target's `retry:` retries it automatically once its failed jobs name a
reason `when` covers (a new attempt, audited as "baton (automatic retry)"), never a canceled run
nor a superseded chain's; a quarantined target's failures are soft failures, said as such."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chains import retrying
from chains.models import AuditEvent, Chain, Quarantine, Repository, Run
from chains.runstate import retry_pending, settle_chain, soft_failed
from chains.status import Status
from tests.engine.conftest import NEWER_SHA, Engine
from tests.fakes.forge import FailedJob, permanent

RETRY = """\
downstream:
  - key: api
    project: acme/api
    retry: {max: 2, when: [runner_system_failure, stuck_or_timeout_failure]}
"""
RUNNER = FailedJob(name="build", stage="build", reason="runner_system_failure", url="")
SCRIPT = FailedJob(name="rspec", stage="test", reason="script_failure", url="")


def _fails(engine: Engine, run: Run, *jobs: FailedJob) -> Run:
    run.refresh_from_db()
    engine.fake.pipelines[("acme/api", run.remote_id)].failed_jobs = list(jobs)
    engine.pipeline(run, Status.FAILED)
    run.refresh_from_db()
    return run


def test_a_runner_failure_is_retried_automatically_and_the_chain_ends_green(
    engine: Engine,
) -> None:
    engine.config(RETRY)
    chain = engine.open_change()
    api = _fails(engine, engine.runs(chain)["api"], RUNNER)
    assert (api.attempt, api.status, api.retried_for) == (
        2,
        Status.PENDING,
        "runner_system_failure",
    )
    assert retrying.attempt_words(api) == "attempt 2 of 3, automatic retry: runner_system_failure"
    assert api.attempts.get().status == Status.FAILED  # the failed attempt stays on record
    [retried] = engine.fake.called("retry_pipeline")
    assert retried.args[:2] == ("acme/api", api.remote_id)
    event = AuditEvent.objects.get(action="run.retry")
    assert event.actor == "baton (automatic retry)"
    assert event.detail["automatic"] == "runner_system_failure"
    engine.pipeline(api, Status.SUCCESS)
    chain.refresh_from_db()
    assert chain.status == Status.SUCCESS
    assert retrying.flakiness(Run.objects.all()) == {api.repository_id: 1}
    [body] = engine.fake.comments.values()
    assert "attempt 2 of 3, automatic retry: runner_system_failure" in body


def test_retries_stop_at_max(engine: Engine) -> None:
    engine.config(RETRY)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    for _ in range(3):
        api = _fails(engine, api, RUNNER)
    assert (api.attempt, api.status) == (3, Status.FAILED)  # 1 + max 2
    assert len(engine.fake.called("retry_pipeline")) == 2
    chain.refresh_from_db()
    assert chain.status == Status.FAILED
    assert retrying.flakiness(Run.objects.all()) == {}


def test_a_reason_retry_does_not_name_is_not_retried(engine: Engine) -> None:
    engine.config(RETRY)
    chain = engine.open_change()
    api = _fails(engine, engine.runs(chain)["api"], SCRIPT)
    assert (api.attempt, api.status) == (1, Status.FAILED)
    assert engine.fake.called("retry_pipeline") == []


def test_no_retry_without_retry_in_the_file(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    api = _fails(engine, engine.runs(chain)["api"], RUNNER)
    assert (api.attempt, api.status) == (1, Status.FAILED)


def test_a_canceled_run_is_never_retried(engine: Engine) -> None:
    engine.config(RETRY)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    engine.pipeline(api, Status.CANCELED)
    api.refresh_from_db()
    assert (api.attempt, api.status) == (1, Status.CANCELED)
    assert engine.fake.called("failed_jobs") == engine.fake.called("retry_pipeline") == []


def test_a_superseded_chains_runs_are_not_retried(engine: Engine) -> None:
    engine.config(RETRY)
    engine.config(RETRY, ref=NEWER_SHA)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    api.refresh_from_db()
    newer = engine.open_change(sha=NEWER_SHA)
    chain.refresh_from_db()
    assert chain.superseded_by_id == newer.pk
    # The old chain's run fails anyway (it was not interruptible, or failed before the cancel).
    Run.objects.filter(pk=api.pk).update(status=Status.RUNNING, cancel_requested=False)
    api = _fails(engine, api, RUNNER)
    assert api.attempt == 1
    assert [c.args[1] for c in engine.fake.called("retry_pipeline")] == []


def _quarantine(path: str, reason: str, *, days: int = 7) -> None:
    Quarantine.objects.create(
        repository=Repository.objects.get(path=path),
        reason=reason,
        expires_at=timezone.now() + timedelta(days=days),
        created_by="admin",
    )


def test_a_quarantined_targets_failure_is_a_soft_failure_said_as_such(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    _quarantine("acme/api", "flaky since the runner upgrade")
    engine.config("downstream:\n  - {key: api, project: acme/api}\n", ref=NEWER_SHA)
    chain = engine.open_change(sha=NEWER_SHA)
    api = _fails(engine, engine.runs(chain)["api"], SCRIPT)
    assert soft_failed(api) and api.quarantine_reason == "flaky since the runner upgrade"
    chain.refresh_from_db()
    assert chain.status == Status.SUCCESS
    status = [s for s in engine.fake.statuses if s["context"] == "baton/api"][-1]
    assert status["status"] == Status.SUCCESS
    assert "quarantined: flaky since the runner upgrade" in str(status["description"])
    body = list(engine.fake.comments.values())[-1]
    assert "quarantined: flaky since the runner upgrade" in body
    assert "success (1 quarantined)" in body
    overall = [s for s in engine.fake.statuses if s["context"] == "baton"][-1]
    assert str(overall["description"]).endswith("1/1 finished, 1 quarantined")


def test_an_expired_quarantine_counts_no_more(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    _quarantine("acme/api", "old", days=-1)
    engine.config("downstream:\n  - {key: api, project: acme/api}\n", ref=NEWER_SHA)
    chain = engine.open_change(sha=NEWER_SHA)
    api = _fails(engine, engine.runs(chain)["api"], SCRIPT)
    assert not soft_failed(api) and api.quarantine_reason == ""
    assert Chain.objects.get(pk=chain.pk).status == Status.FAILED


DEPENDS = """\
downstream:
  - key: api
    project: acme/api
    retry: {max: 1, when: runner_system_failure}
  - key: docs
    project: acme/docs
    depends_on: api
"""


def test_what_waits_for_a_retried_run_is_not_skipped(engine: Engine) -> None:
    engine.config(DEPENDS)
    chain = engine.open_change()
    api = _fails(engine, engine.runs(chain)["api"], RUNNER)
    assert api.attempt == 2
    docs = engine.runs(chain)["docs"]
    assert docs.status == Status.WAITING  # not skipped while api was being retried
    engine.pipeline(api, Status.SUCCESS)
    docs.refresh_from_db()
    assert docs.status == Status.PENDING  # sent once api passed


def test_what_waits_for_a_run_that_is_not_retried_is_skipped(engine: Engine) -> None:
    engine.config(DEPENDS)
    chain = engine.open_change()
    api = _fails(engine, engine.runs(chain)["api"], SCRIPT)
    assert (api.attempt, api.status) == (1, Status.FAILED)
    assert engine.runs(chain)["docs"].status == Status.SKIPPED
    chain.refresh_from_db()
    assert chain.status == Status.FAILED


def test_a_failed_run_awaiting_its_reasons_is_not_red_yet(engine: Engine) -> None:
    engine.config(RETRY)
    chain = engine.open_change()
    api = engine.runs(chain)["api"]
    Run.objects.filter(pk=api.pk).update(status=Status.FAILED)
    api.refresh_from_db()
    assert retry_pending(api)
    settle_chain(chain.pk)
    chain.refresh_from_db()
    assert chain.status == Status.RUNNING
    api.failed_jobs = {"attempt": 1, "pipeline": api.remote_id, "jobs": []}
    assert not retry_pending(api)


def test_when_the_forge_will_not_say_why_only_always_retries(engine: Engine) -> None:
    engine.config(DEPENDS)
    chain = engine.open_change()
    engine.fake.fail("failed_jobs", permanent())
    api = engine.runs(chain)["api"]
    engine.pipeline(api, Status.FAILED)
    api.refresh_from_db()
    assert (api.attempt, api.status) == (1, Status.FAILED)  # runner_system_failure unknown
    assert engine.runs(chain)["docs"].status == Status.SKIPPED
    chain.refresh_from_db()
    assert chain.status == Status.FAILED
