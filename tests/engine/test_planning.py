"""Changes into chains: a newer commit supersedes the change's chain and cancels what may be
interrupted; a fork's `.baton.yml` is read from the target branch, never from the fork."""

from __future__ import annotations

from bots.events import ChangeAction
from chains.models import Chain, Run
from chains.status import Status
from tests.engine.conftest import NEWER_SHA, SHA, Engine

TWO = """\
downstream:
  - {key: api, project: acme/api, ref: main}
  - {key: docs, project: acme/docs, ref: main, interruptible: false}
"""


def test_a_new_commit_supersedes_the_chain_and_cancels_interruptible_runs(engine: Engine) -> None:
    engine.config(TWO)
    engine.config(TWO, ref=NEWER_SHA)
    first = engine.open_change()
    old = engine.runs(first)
    for run in old.values():
        engine.pipeline(run, Status.RUNNING)
    second = engine.open_change(sha=NEWER_SHA, action=ChangeAction.NEW_COMMITS)
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk
    api, docs = (Run.objects.get(pk=old[k].pk) for k in ("api", "docs"))
    assert api.cancel_requested and api.status == Status.CANCELED  # canceled on the forge
    [cancel] = engine.fake.called("cancel_pipeline")
    assert cancel.args == ("acme/api", api.remote_id)
    assert docs.status == Status.RUNNING and not docs.cancel_requested  # interruptible: false
    assert {r.key for r in second.runs.all()} == {"api", "docs"}
    assert second.head_sha == NEWER_SHA
    # The new chain's triggers carry the new commit.
    shas = {c.args[2]["UPSTREAM_SHA"] for c in engine.fake.called("create_pipeline")}
    assert shas == {SHA, NEWER_SHA}


def test_an_event_about_an_older_commit_starts_nothing(engine: Engine) -> None:
    engine.config(TWO)
    event = engine.change_event(sha=SHA)
    engine.fake.add_change("acme/app", 7, head_sha=NEWER_SHA)  # the forge has moved on
    from bots.engine.planning import handle_change

    detail = engine.step(handle_change, engine.forge, event, None)
    assert "an earlier commit" in detail
    assert not Chain.objects.exists()


def test_closing_the_change_cancels_its_interruptible_runs(engine: Engine) -> None:
    engine.config(TWO)
    chain = engine.open_change()
    runs = engine.runs(chain)
    for run in runs.values():
        engine.pipeline(run, Status.RUNNING)
    from bots.engine.planning import handle_change

    engine.step(handle_change, engine.forge, engine.change_event(action=ChangeAction.CLOSED), None)
    engine.drain()
    assert Run.objects.get(pk=runs["api"].pk).status == Status.CANCELED
    assert Run.objects.get(pk=runs["docs"].pk).status == Status.RUNNING


def test_a_fork_reads_the_baton_file_of_the_target_branch(engine: Engine) -> None:
    # The fork's own commit asks for acme/web; the target branch's file asks for acme/api.
    engine.config("downstream:\n  - {key: web, project: acme/web}\n", ref=SHA)
    engine.config("downstream:\n  - {key: api, project: acme/api}\n", ref="main")
    chain = engine.open_change(from_fork=True)
    assert chain.from_fork
    assert set(engine.runs(chain)) == {"api"}
    reads = {c.args[2] for c in engine.fake.called("read_file")}
    assert reads == {"main"}
    assert [p.project for p in engine.fake.created()] == ["acme/api"]


def test_the_forge_s_word_makes_a_fork_even_when_the_hook_does_not_say(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: web, project: acme/web}\n", ref=SHA)
    engine.config("downstream:\n  - {key: api, project: acme/api}\n", ref="main")
    event = engine.change_event()
    engine.fake.add_change("acme/app", 7, head_sha=SHA, from_fork=True)
    from bots.engine.planning import handle_change

    engine.step(handle_change, engine.forge, event, None)
    chain = Chain.objects.get()
    assert chain.from_fork and set(engine.runs(chain)) == {"api"}


def test_a_target_the_author_may_not_trigger_fails_in_words(engine: Engine) -> None:
    engine.fake.add_project("other/vault")
    engine.config("downstream:\n  - {key: vault, project: other/vault}\n")
    chain = engine.open_change()
    vault = engine.runs(chain)["vault"]
    assert vault.status == Status.FAILED and "may not trigger" in vault.error
    assert engine.fake.created() == []


def test_an_invalid_baton_file_fails_the_chain_with_the_line(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: api, projekt: acme/api}\n")
    chain = engine.open_change()
    assert chain.status == Status.FAILED and ".baton.yml is invalid" in chain.error
    assert not chain.runs.exists()
    assert ("baton", "failed") in engine.fake.contexts()
