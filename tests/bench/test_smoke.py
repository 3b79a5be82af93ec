"""Every benchmark's ``--smoke`` mode runs its scenario end to end (so `make test` and CI catch a
benchmark the code has broken). Each runs in its own process, with its own databases, on the
PostgreSQL server and Redis of the environment; its figures are printed when it fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import smoke

pytestmark = [pytest.mark.services]


def test_every_script_of_bench_is_a_smoke_tested_benchmark() -> None:
    names = {path.stem for path in smoke.scripts()}
    assert {"api_calls", "dashboard", "fanout", "intake"} <= names
    assert not names & smoke.HELPERS


@pytest.mark.timeout(smoke.TIMEOUT + 30)
@pytest.mark.parametrize("script", smoke.scripts(), ids=lambda path: path.stem)
def test_smoke_mode_runs_the_scenario(script: Path, services: None) -> None:
    try:
        done = subprocess.run(
            smoke.command(script),
            cwd=smoke.ROOT,
            capture_output=True,
            text=True,
            timeout=smoke.TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        pytest.fail(f"{script.name} --smoke did not end within {smoke.TIMEOUT:.0f}s:\n{out}")
    print(done.stdout)  # the figures: shown with the failure, or always with `pytest -rP`
    output = f"{done.stdout[-8000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"{script.name} --smoke exited {done.returncode}:\n{output}"
    assert "scenario: all" in done.stdout, f"{script.name} --smoke checked nothing:\n{output}"
