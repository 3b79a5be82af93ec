"""Comment commands, each through `handle_comment`: one reply, edited in place, says what was
done; every command asks the policy first."""

from __future__ import annotations

import itertools

from bots.commands.handlers import handle_comment
from bots.commands.parser import HELP
from bots.events import CommentEvent
from chains.models import Chain, Run
from chains.status import Status
from tests.engine.conftest import APP, Engine

TWO = """\
downstream:
  - {key: api, project: acme/api}
  - {key: docs, project: acme/docs}
"""
_ids = itertools.count(1)


def _say(engine: Engine, body: str, *, author: str = "alice", number: int = 7) -> str:
    """Post a comment on the change and return Baton's reply as it finally reads."""
    event = CommentEvent(APP, number, author, body, f"note-{next(_ids)}")
    before = len(engine.fake.called("upsert_comment"))
    engine.step(handle_comment, engine.forge, event, None)
    replies = engine.fake.called("upsert_comment")[before:]
    assert replies, "no reply"
    ack, *rest = replies
    assert "working on" in ack.args[2] and ack.args[3] is None
    assert all(r.args[3] is not None for r in rest)  # the acknowledgement is edited in place
    return replies[-1].args[2]


def _started(engine: Engine) -> Chain:
    engine.config(TWO)
    return engine.open_change()


def test_help(engine: Engine) -> None:
    reply = _say(engine, "/baton help")
    assert HELP.strip()[:40] in reply


def test_status_shows_the_latest_chain(engine: Engine) -> None:
    _started(engine)
    reply = _say(engine, "/baton status")
    assert "api" in reply and "docs" in reply


def test_status_without_a_chain_says_how_to_start_one(engine: Engine) -> None:
    reply = _say(engine, "/baton status")
    assert "no chain yet" in reply


def test_plan_shows_what_would_run_and_starts_nothing(engine: Engine) -> None:
    engine.config(TWO)
    engine.fake.add_change(APP, 7, head_sha="a" * 40)
    reply = _say(engine, "/baton plan")
    assert "acme/api" in reply and "acme/docs" in reply
    assert not Chain.objects.exists() and engine.fake.created() == []


def test_run_starts_a_chain_on_the_latest_commit(engine: Engine) -> None:
    engine.config(TWO)
    engine.fake.add_change(APP, 7, head_sha="a" * 40)
    reply = _say(engine, "/baton run api")
    assert "Starting" in reply
    engine.drain()
    chain = Chain.objects.get()
    assert set(engine.runs(chain)) == {"api"}  # only what was named
    assert [p.project for p in engine.fake.created()] == ["acme/api"]


def test_retry_failed_runs_them_again_as_a_new_attempt(engine: Engine) -> None:
    chain = _started(engine)
    api = engine.runs(chain)["api"]
    engine.pipeline(api, Status.FAILED)
    reply = _say(engine, "/baton retry")
    assert "Retrying `api`" in reply
    engine.drain()
    api.refresh_from_db()
    assert api.attempt == 2 and api.status == Status.PENDING
    assert api.attempts.get().status == Status.FAILED  # the first attempt stays on record
    [retried] = engine.fake.called("retry_pipeline")
    assert retried.args[:2] == ("acme/api", api.remote_id)


def test_retry_of_an_unknown_run_is_refused_in_words(engine: Engine) -> None:
    _started(engine)
    reply = _say(engine, "/baton retry nope")
    assert "Not done: no run called nope; the runs are api, docs" in reply


def test_cancel_all_cancels_every_active_run(engine: Engine) -> None:
    chain = _started(engine)
    reply = _say(engine, "/baton cancel")
    assert "Canceling" in reply
    engine.drain()
    assert {r.status for r in chain.runs.all()} == {Status.CANCELED}
    assert len(engine.fake.called("cancel_pipeline")) == 2


def test_cancel_one_run(engine: Engine) -> None:
    chain = _started(engine)
    _say(engine, "/baton cancel docs")
    engine.drain()
    assert {r.key: r.status for r in chain.runs.all()} == {
        "api": Status.PENDING,
        "docs": Status.CANCELED,
    }


def test_a_person_without_grants_is_refused_and_nothing_changes(engine: Engine) -> None:
    chain = _started(engine)
    before = list(Run.objects.values_list("status", "cancel_requested"))
    reply = _say(engine, "/baton cancel", author="mallory")
    assert "Not done:" in reply
    engine.drain()
    assert list(Run.objects.values_list("status", "cancel_requested")) == before
    assert engine.fake.called("cancel_pipeline") == []
    assert chain.runs.count() == 2


def test_a_comment_is_handled_once(engine: Engine) -> None:
    _started(engine)
    event = CommentEvent(APP, 7, "alice", "/baton cancel", "note-once")
    engine.step(handle_comment, engine.forge, event, None)
    assert engine.step(handle_comment, engine.forge, event, None) == "handled already"


def test_baton_s_own_comments_are_not_commands(engine: Engine) -> None:
    event = CommentEvent(APP, 7, "baton-bot", "/baton help", "note-own")
    assert engine.step(handle_comment, engine.forge, event, None) == "Baton's own comment"
    assert engine.fake.called("upsert_comment") == []


def test_a_mistake_is_answered_with_the_help(engine: Engine) -> None:
    reply = _say(engine, "/baton frobnicate")
    assert "I did not understand" in reply and HELP.strip()[:40] in reply
