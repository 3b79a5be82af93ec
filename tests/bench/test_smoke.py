"""Every benchmark's ``--smoke`` mode runs its scenario end to end (so `make test` and CI catch a
benchmark the code has broken). Each runs in its own process, with its own databases, on the
PostgreSQL server and Redis of the environment, two side by side (bench/smoke.py: one Redis db
per lane), in the background from the session's first test on (tests/conftest.py); its figures
are printed when it fails."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest

from bench import smoke
from tests.conftest import SMOKE_RUNS

pytestmark = [pytest.mark.services]


def test_every_script_of_bench_is_a_smoke_tested_benchmark() -> None:
    names = {path.stem for path in smoke.scripts()}
    assert {"api_calls", "dashboard", "fanout", "intake"} <= names
    assert not names & smoke.HELPERS


@pytest.fixture
def smoke_runs(request: pytest.FixtureRequest, services: None) -> dict[Path, Future[smoke.Outcome]]:
    """The smoke runs, started with the session's first test (tests/conftest.py)."""
    return request.session.stash[SMOKE_RUNS]


# Each waits for its own run; the module's runs take about TIMEOUT at most, lane by lane.
@pytest.mark.timeout(2 * smoke.TIMEOUT + 30)
@pytest.mark.parametrize("script", smoke.scripts(), ids=lambda path: path.stem)
def test_smoke_mode_runs_the_scenario(
    script: Path, smoke_runs: dict[Path, Future[smoke.Outcome]]
) -> None:
    done = smoke_runs[script].result()
    print(done.stdout)  # the figures: shown with the failure, or always with `pytest -rP`
    output = f"{done.stdout[-8000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert done.code != 124, f"{script.name} --smoke did not end in {smoke.TIMEOUT:.0f}s:\n{output}"
    assert done.code == 0, f"{script.name} --smoke exited {done.code}:\n{output}"
    assert "scenario: all" in done.stdout, f"{script.name} --smoke checked nothing:\n{output}"
