"""Every benchmark in its ``--smoke`` mode, two side by side: tiny sizes, seconds each, the real
path end to end (PostgreSQL, Redis, gunicorn, a Celery worker, the sandbox forge), figures
printed. A benchmark whose scenario breaks exits 1; a missed performance goal does not.

Smoke runs mostly wait (on the sandbox's pipelines, on workers polling), so two at a time take
little more than half as long as one after the other. Each has its own database; each lane has
its own Redis db (a benchmark flushes its db before and after): ``BENCH_REDIS`` (default db 13)
and ``BENCH_REDIS_2`` (default db 11 of the same server). The figures of a smoke run are not
measurements: another benchmark shares the machine.

    .venv/bin/python bench/smoke.py [NAME ...]     # `make bench-smoke`; NAME: intake, fanout, …

`tests/bench/test_smoke.py` runs the same list under pytest, so `make test` (and CI) does too:
a benchmark can no longer break unnoticed. A new script in bench/ is picked up by itself and
must accept ``--smoke``.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

# Modules of bench/ that are not benchmarks: shared code, the sandbox's process, this runner.
HELPERS = frozenset(
    {
        "__init__",
        "common",
        "smoke",
        "sandbox_server",
        "intake_settings",
        "intake_urls",
        "profiled_worker",
    }
)
TIMEOUT = 300.0  # seconds per benchmark in smoke mode; they need well under one minute
SECOND_LANE_DB = 11
# Started first, so that the lanes end together (the rest take under 30 s each).
LONGEST = ("api_calls", "soak", "fanout", "eta")


def scripts() -> list[Path]:
    """The benchmarks: every module of bench/ that runs as a program, except the helpers."""
    return sorted(
        path
        for path in BENCH.glob("*.py")
        if path.stem not in HELPERS and 'if __name__ == "__main__":' in path.read_text()
    )


def command(script: Path) -> list[str]:
    return [sys.executable, str(script), "--smoke"]


def lanes() -> list[str]:
    """The Redis of each lane: ``BENCH_REDIS``'s (common.DEFAULT_REDIS), and ``BENCH_REDIS_2``
    or db SECOND_LANE_DB of the same server."""
    first = common.DEFAULT_REDIS
    parts = urlsplit(first)
    second = os.environ.get("BENCH_REDIS_2") or urlunsplit(
        (parts.scheme, parts.netloc, f"/{SECOND_LANE_DB}", "", "")
    )
    if second == first:
        raise ValueError(f"BENCH_REDIS and BENCH_REDIS_2 are both {first}: one lane each")
    return [first, second]


@dataclass(frozen=True)
class Outcome:
    script: Path
    code: int  # 124: it did not end within TIMEOUT
    seconds: float
    stdout: str
    stderr: str


_running: set[subprocess.Popen[str]] = set()  # the smoke runs going on now


def run(script: Path, redis: str) -> Outcome:
    """One benchmark's smoke run on the Redis db ``redis``, its output kept."""
    started = time.monotonic()
    env = {**os.environ, "BENCH_REDIS": redis}
    with subprocess.Popen(
        command(script),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        _running.add(process)
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()  # it stops its children and drops its database
            out, err = process.communicate()
            out += f"\n{script.name} --smoke did not end within {TIMEOUT:.0f}s"
            return Outcome(script, 124, time.monotonic() - started, out, err)
        finally:
            _running.discard(process)
    return Outcome(script, process.returncode, time.monotonic() - started, out, err)


def stop(futures: dict[Path, Future[Outcome]]) -> None:
    """Give up the smoke runs that have not ended: the waiting ones do not start, the running
    ones are sent SIGTERM (each stops its children and drops its database)."""
    for future in futures.values():
        future.cancel()
    for process in list(_running):
        process.terminate()


def side_by_side(chosen: list[Path]) -> dict[Path, Future[Outcome]]:
    """Start the smoke runs of ``chosen``, one per lane at a time, the longest first."""
    free: queue.Queue[str] = queue.Queue()
    for redis in lanes():
        free.put(redis)

    def in_a_lane(script: Path) -> Outcome:
        redis = free.get()
        try:
            return run(script, redis)
        finally:
            free.put(redis)

    def rank(script: Path) -> tuple[int, str]:
        order = LONGEST.index(script.stem) if script.stem in LONGEST else len(LONGEST)
        return order, script.stem

    pool = ThreadPoolExecutor(free.qsize(), thread_name_prefix="smoke")
    futures = {script: pool.submit(in_a_lane, script) for script in sorted(chosen, key=rank)}
    pool.shutdown(wait=False)  # the runs go on; each future says when its own has ended
    return futures


def main(names: list[str]) -> int:
    chosen = [s for s in scripts() if not names or s.stem in names]
    unknown = sorted(set(names) - {s.stem for s in chosen})
    if unknown:
        print(
            f"no benchmark called {', '.join(unknown)}; there are: "
            + ", ".join(s.stem for s in scripts())
        )
        return 2
    started = time.monotonic()
    results: list[tuple[str, int, float]] = []
    for future in as_completed(side_by_side(chosen).values()):
        outcome = future.result()
        print(f"\n===== bench/{outcome.script.name} --smoke", flush=True)
        print(outcome.stdout + outcome.stderr, flush=True)
        results.append((outcome.script.name, outcome.code, outcome.seconds))
    print("\n===== smoke runs")
    for name, code, seconds in results:
        print(f"  {name:<16} {'ok' if code == 0 else f'BROKEN (exit {code})':<18} {seconds:5.1f} s")
    print(
        f"  total {sum(s for _, _, s in results):.1f} s, "
        f"{time.monotonic() - started:.1f} s side by side"
    )
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
