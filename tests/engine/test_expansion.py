"""A run sent to a project whose own `.baton.yml` was just read and triggers nothing from
upstream asks for no expansion task (bots/engine/expansion.py): its answer is known for as long
as the file is remembered. Anything else is expanded as before."""

from __future__ import annotations

from typing import Any

from chains.models import Chain, Run
from tests.engine.conftest import Engine

ONE = "downstream:\n  - {key: api, project: acme/api}\n"


def _api(chain: Chain) -> Run:
    return chain.runs.get(key="api")


def _expansions(engine: Engine, number: int) -> int:
    engine.ran.clear()
    engine.open_change(number=number)
    return engine.ran.count("expand_run")


def test_a_project_known_to_trigger_nothing_is_not_expanded_again(engine: Engine) -> None:
    engine.config(ONE)
    engine.config("downstream: []\n", project="acme/api", ref="main")
    assert _expansions(engine, 7) == 1  # read once
    assert _expansions(engine, 8) == 0  # known: nothing to expand
    assert _expansions(engine, 9) == 0


def test_without_remembering_every_run_is_expanded(engine: Engine, settings: Any) -> None:
    settings.BATON_DOWNSTREAM_CONFIG_TTL = 0
    engine.config(ONE)
    assert _expansions(engine, 7) == 1
    assert _expansions(engine, 8) == 1


def test_a_project_that_triggers_more_is_expanded_every_time(engine: Engine) -> None:
    engine.config(ONE)
    engine.config(
        "downstream:\n  - {key: docs, project: acme/docs, on: [upstream]}\n",
        project="acme/api",
        ref="main",
    )
    for number in (7, 8):
        assert _expansions(engine, number) == 1
        chain = Chain.objects.get(change_number=number)
        assert chain.runs.filter(key="docs", parent=_api(chain)).exists()


def test_an_invalid_file_is_not_noted_and_each_run_says_why(engine: Engine) -> None:
    engine.config(ONE)
    engine.config("downstream: [oops\n", project="acme/api", ref="main")
    for number in (7, 8):
        assert _expansions(engine, number) == 1
        assert "is invalid" in _api(Chain.objects.get(change_number=number)).error
