"""Why a run failed: once a run is found failed (webhook or poll), one extra forge call names its
failed jobs, which are kept bounded on the run and said in the ``baton/<key>`` status and the
summary comment; a forge error there never costs the run its end."""

from __future__ import annotations

from chains import failures
from chains.models import Chain, Run
from chains.status import Status
from tests.engine.conftest import Engine
from tests.fakes.forge import FailedJob, permanent, transient

ONE = """\
downstream:
  - {key: api, project: acme/api}
"""
RSPEC = FailedJob(
    name="rspec",
    stage="test",
    reason="script_failure",
    url="https://forge.test/acme/api/-/jobs/9",
)


def _fail(engine: Engine, *jobs: FailedJob) -> tuple[Chain, Run]:
    engine.config(ONE)
    chain = engine.open_change()
    run = engine.runs(chain)["api"]
    engine.fake.pipelines[("acme/api", run.remote_id)].failed_jobs = list(jobs)
    engine.pipeline(run, Status.FAILED)
    run.refresh_from_db()
    chain.refresh_from_db()
    return chain, run


def _last_status(engine: Engine, context: str) -> dict[str, object]:
    return [s for s in engine.fake.statuses if s["context"] == context][-1]


def test_a_failed_run_says_which_jobs_failed_and_why(engine: Engine) -> None:
    _, run = _fail(engine, RSPEC)
    assert run.status == Status.FAILED
    assert [j.as_dict() for j in failures.shown(run)] == [
        {
            "name": "rspec",
            "stage": "test",
            "reason": "script_failure",
            "url": "https://forge.test/acme/api/-/jobs/9",
            "step": "",
        }
    ]
    [call] = engine.fake.called("failed_jobs")  # one extra request
    assert call.args == ("acme/api", run.remote_id) and call.kwargs == {"limit": 10}
    status = _last_status(engine, "baton/api")
    assert status["status"] == Status.FAILED
    assert status["description"] == "failed: rspec (script failure)"
    [body] = engine.fake.comments.values()
    assert "failed: rspec (script failure) [job](<https://forge.test/acme/api/-/jobs/9>)" in body


def test_a_successful_run_costs_no_extra_request(engine: Engine) -> None:
    engine.config(ONE)
    chain = engine.open_change()
    engine.pipeline(engine.runs(chain)["api"], Status.SUCCESS)
    assert engine.fake.called("failed_jobs") == []


def test_a_poll_that_finds_the_run_failed_asks_why_too(engine: Engine) -> None:
    engine.config(ONE)
    chain = engine.open_change()
    run = engine.runs(chain)["api"]
    engine.fake.pipelines[("acme/api", run.remote_id)].failed_jobs = [RSPEC]
    engine.fake.set_status("acme/api", run.remote_id, Status.FAILED)
    engine.deliver("poll_run", run.pk)
    engine.drain()
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert [j.name for j in failures.shown(run)] == ["rspec"]


def test_a_forge_error_keeps_the_runs_end_and_shows_no_reason(engine: Engine) -> None:
    engine.config(ONE)
    chain = engine.open_change()
    run = engine.runs(chain)["api"]
    engine.fake.fail("failed_jobs", transient())
    engine.fake.pipelines[("acme/api", run.remote_id)].failed_jobs = [RSPEC]
    engine.fake.set_status("acme/api", run.remote_id, Status.FAILED)
    engine.deliver("poll_run", run.pk)  # the run's end is committed by tracking
    [kick] = engine.kicks.take("fetch_failed_jobs")
    engine.drain()
    outcome = engine.deliver("fetch_failed_jobs", *kick.args)
    assert outcome.retried and (outcome.countdown or 0) > 0  # a transient error: later
    run.refresh_from_db()
    chain.refresh_from_db()
    assert run.status == Status.FAILED and chain.status == Status.FAILED
    assert failures.shown(run) == []
    assert _last_status(engine, "baton/api")["description"] == "acme/api: failed"
    # The retry reads them, and the status is posted again with the reason.
    engine.deliver("fetch_failed_jobs", *kick.args, retries=1)
    engine.drain()
    run.refresh_from_db()
    assert [j.name for j in failures.shown(run)] == ["rspec"]
    assert _last_status(engine, "baton/api")["description"] == "failed: rspec (script failure)"


def test_a_permanent_error_is_given_up_quietly(engine: Engine) -> None:
    engine.config(ONE)
    chain = engine.open_change()
    run = engine.runs(chain)["api"]
    engine.fake.fail("failed_jobs", permanent())
    engine.pipeline(run, Status.FAILED)
    run.refresh_from_db()
    assert run.status == Status.FAILED and failures.shown(run) == []
    assert engine.kicks.of("fetch_failed_jobs") == []


def test_reasons_of_an_earlier_attempt_are_not_shown_or_stored(engine: Engine) -> None:
    _, run = _fail(engine, RSPEC)
    kept = dict(run.failed_jobs)
    Run.objects.filter(pk=run.pk).update(attempt=2)  # retried: a new attempt
    run.refresh_from_db()
    assert failures.shown(run) == []  # the stored jobs explain attempt 1
    # A late answer for attempt 1 is not kept for attempt 2.
    engine.deliver("fetch_failed_jobs", run.pk, run.remote_id, 1)
    run.refresh_from_db()
    assert run.failed_jobs == kept


def test_hostile_and_endless_answers_are_bounded(engine: Engine) -> None:
    hostile = FailedJob(
        name="x" * 5000 + "\n<script>",
        stage="@all [click](javascript:alert(1))",
        reason="script_failure\x00\x1b[31m",
        url="javascript:alert(1)",
        step="`rm -rf` | table",
    )
    many = [FailedJob(f"job-{n}", "test", "script_failure", "") for n in range(30)]
    _, run = _fail(engine, hostile, *many)
    jobs = failures.shown(run)
    assert len(jobs) == failures.MAX_JOBS
    first = jobs[0]
    assert len(first.name) <= failures.MAX_TEXT and "\n" not in first.name
    assert first.url == "" and "\x00" not in first.reason and "\x1b" not in first.reason
    description = str(_last_status(engine, "baton/api")["description"])
    assert len(description) <= failures.STATUS_LIMIT
    [body] = engine.fake.comments.values()
    assert "<script>" not in body and "javascript:" not in body
    assert "@all" not in body  # a mention is broken up (bots/markdown.py)
    assert "+7 more" in body  # 3 named, the rest counted


def test_the_description_names_as_many_jobs_as_fit(engine: Engine) -> None:
    jobs = [FailedJob(f"job-{n}", "test", "stuck_or_timeout_failure", "") for n in range(10)]
    _fail(engine, *jobs)
    description = str(_last_status(engine, "baton/api")["description"])
    assert description.startswith("failed: job-0 (stuck or timeout failure), job-1 (")
    assert description.endswith(" more") and len(description) <= failures.STATUS_LIMIT
