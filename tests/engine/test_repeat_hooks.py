"""A pipeline webhook that tells nothing new (GitLab's "created" and "pending" both read as
pending, and the create call's answer said so already) only notes that the forge spoke: no row
lock, no save, no mirror. Anything new still goes the whole way."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.engine.tracking import handle_pipeline
from bots.events import PipelineEvent
from chains.models import Chain, Run
from chains.status import Status
from tests.engine.conftest import Engine


def _api(chain: Chain) -> Run:
    return chain.runs.select_related("repository").get(key="api")


def test_the_first_pending_hook_only_notes_that_webhooks_come(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    sent = _api(chain)
    assert (sent.status, sent.hooked, sent.remote_id != "") == (Status.PENDING, False, True)
    asked = len(engine.kicks.sent)
    detail = engine.pipeline(sent, Status.PENDING)  # the create's answer said pending already
    heard = _api(chain)
    assert detail == f"run {heard.pk} is pending"
    assert heard.hooked  # polled only when long quiet from now on
    assert heard.updated_at == sent.updated_at  # not saved: the dashboard sees no change
    assert heard.last_seen_at is not None and sent.last_seen_at is not None
    assert heard.last_seen_at > sent.last_seen_at
    assert engine.kicks.sent[asked:] == []  # no mirror asked, nothing released


def test_a_poll_with_no_news_leaves_hooked_as_it_was(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    engine.pipeline(_api(chain), Status.PENDING, hooked=False)  # a poll's answer, no webhook
    assert _api(chain).hooked is False


def test_a_repeated_pending_hook_only_notes_it_was_heard(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    engine.pipeline(_api(chain), Status.PENDING)  # the first hook: the run is now hooked
    before = _api(chain)
    assert (before.status, before.hooked) == (Status.PENDING, True)
    asked = len(engine.kicks.sent)
    detail = engine.pipeline(_api(chain), Status.PENDING)
    after = _api(chain)
    assert detail == f"run {after.pk} is pending"
    assert after.updated_at == before.updated_at  # not saved: the dashboard sees no change
    assert after.last_seen_at is not None and before.last_seen_at is not None
    assert after.last_seen_at > before.last_seen_at  # the poller knows the forge spoke
    assert engine.kicks.sent[asked:] == []  # no mirror asked, nothing released


def test_news_after_a_repeat_still_moves_the_run_and_the_upstream_change(
    engine: Engine,
) -> None:
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    engine.pipeline(_api(chain), Status.PENDING)
    engine.pipeline(_api(chain), Status.PENDING)
    engine.kicks.clear()
    engine.pipeline(_api(chain), Status.RUNNING)
    running = _api(chain)
    assert running.status == Status.RUNNING and running.started_at is not None
    engine.pipeline(running, Status.RUNNING)  # a repeat of running keeps its start
    assert _api(chain).started_at == running.started_at
    engine.pipeline(running, Status.SUCCESS)
    chain.refresh_from_db()
    assert _api(chain).status == Status.SUCCESS and chain.status == Status.SUCCESS
    assert engine.fake.statuses[-1]["status"] == Status.SUCCESS


def test_a_repeat_costs_two_statements_whatever_the_run_holds(engine: Engine) -> None:
    """The match reads only what it needs (``tracking.MATCHED``): a field it did not read would
    cost a statement of its own here."""
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    engine.pipeline(_api(chain), Status.RUNNING)
    run = _api(chain)
    with CaptureQueriesContext(connection) as queries:
        detail = handle_pipeline(engine.forge, _event(engine, run, Status.RUNNING), None)
    assert detail == f"run {run.pk} is running"
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "UPDATE"]


def _event(engine: Engine, run: Run, status: Status) -> PipelineEvent:
    """What the forge would say of the run's pipeline: ``status``, nothing else new."""
    return PipelineEvent(
        project=run.repository.path,
        project_id=engine.fake.projects[run.repository.path].id,
        pipeline_id=run.remote_id,
        status=status,
        web_url=run.web_url,
    )


# What Django sends for a field ``only()`` left out, when the code reads it.
DEFERRED_LOAD = re.compile(
    r'SELECT "chains_run"\."id", "chains_run"\."\w+" FROM "chains_run" WHERE'
)


def _deferred_loads(engine: Engine, run: Run, status: Status) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        detail = handle_pipeline(engine.forge, _event(engine, run, status), None)
    assert detail == f"run {run.pk} is {status}"
    return [q["sql"] for q in queries.captured_queries if DEFERRED_LOAD.match(q["sql"])]


def test_news_and_the_end_read_no_field_one_by_one(engine: Engine) -> None:
    """News is applied to the run read under its lock with only what it needs
    (``tracking.LOCKED``): a field it did not read would cost a statement of its own."""
    engine.config(
        "downstream:\n  - key: api\n    project: acme/api\n"
        "    variables: {TOKEN: {value: s3cret-value, masked: true}}\n"
    )
    chain = engine.open_change()
    engine.pipeline(_api(chain), Status.PENDING)
    assert _deferred_loads(engine, _api(chain), Status.RUNNING) == []
    assert _deferred_loads(engine, _api(chain), Status.FAILED) == []
    assert _api(chain).status == Status.FAILED
    chain.refresh_from_db()
    assert chain.status == Status.FAILED


def test_the_match_reads_each_field_as_the_orm_does(engine: Engine) -> None:
    """``RunQuerySet.of_pipeline`` makes its row a Run itself: every field it reads holds what a
    queryset would give (the database's and the field's own conversions: aware datetimes on
    SQLite too), the repository comes without a query, and every other field is left to load
    when read."""
    from bots.engine.tracking import MATCHED

    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    chain = engine.open_change()
    engine.pipeline(_api(chain), Status.RUNNING)
    orm = _api(chain)
    assert orm.started_at is not None and orm.sent_at is not None
    found = Run.objects.of_pipeline(engine.forge.pk, "ACME/Api", orm.remote_id, MATCHED)
    assert found is not None and found.pk == orm.pk
    for field in Run._meta.concrete_fields:
        if field.name in MATCHED:
            assert getattr(found, field.attname) == getattr(orm, field.attname), field.name
    assert found.started_at.tzinfo is not None
    assert (found.repository.path, found.repository.remote_id) == (
        orm.repository.path,
        orm.repository.remote_id,
    )
    assert found.get_deferred_fields() == {
        f.attname for f in Run._meta.concrete_fields if f.name not in {"id", *MATCHED}
    }
    assert Run.objects.of_pipeline(engine.forge.pk, "acme/api", "999999", MATCHED) is None
    assert Run.objects.of_pipeline(engine.forge.pk, "acme/web", orm.remote_id, MATCHED) is None
