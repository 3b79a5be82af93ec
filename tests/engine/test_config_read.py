"""A change's `.baton.yml` is read on one of the worker's sending threads while the planning
task reads who may do what from the database: read once, at the confirmed change's ref, and a
failed read ends as it did when the file was read in line (a transient error is raised for the
delivery to be retried, a permanent one fails the chain in words)."""

from __future__ import annotations

import threading

import pytest

from bots.engine.planning import handle_change
from bots.forges.base import ForgeError
from chains.models import Chain
from chains.status import Status
from tests.engine.conftest import APP, SHA, Engine
from tests.fakes.forge import permanent, transient

ONE = "downstream:\n  - {key: api, project: acme/api}\n"


def test_the_file_is_read_once_at_the_head_commit_on_another_thread(engine: Engine) -> None:
    engine.config(ONE)
    readers: list[str] = []
    read = engine.fake.read_file

    def reading(project: str, path: str, ref: str) -> str | None:
        readers.append(threading.current_thread().name)
        return read(project, path, ref)

    engine.fake.read_file = reading  # type: ignore[method-assign]
    chain = engine.open_change()
    reads = [c.args for c in engine.fake.called("read_file") if c.args[0] == APP]
    assert reads == [(APP, ".baton.yml", SHA)]
    assert readers and readers[0] != threading.current_thread().name
    assert chain.error == "" and set(engine.runs(chain)) == {"api"}


def test_a_transient_error_reading_the_file_is_raised_for_a_retry(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("read_file", transient())
    with pytest.raises(ForgeError) as raised:
        engine.step(handle_change, engine.forge, engine.change_event(), None)
    assert not raised.value.permanent
    assert not Chain.objects.exists()


def test_a_permanent_error_reading_the_file_fails_the_chain_in_words(engine: Engine) -> None:
    engine.config(ONE)
    engine.fake.fail("read_file", permanent("403 Forbidden", status_code=403))
    chain = engine.open_change()
    assert chain.status == Status.FAILED
    assert chain.error.startswith("could not read .baton.yml: 403 Forbidden")
    assert not chain.runs.exists()
