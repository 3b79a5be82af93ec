"""Every benchmark in its ``--smoke`` mode, one after the other: tiny sizes, seconds each, the
real path end to end (PostgreSQL, Redis, gunicorn, a Celery worker, the sandbox forge), figures
printed. A benchmark whose scenario breaks exits 1; a missed performance goal does not.

    .venv/bin/python bench/smoke.py [NAME ...]     # `make bench-smoke`; NAME: intake, fanout, …

`tests/bench/test_smoke.py` runs the same list under pytest, so `make test` (and CI) does too:
a benchmark can no longer break unnoticed. A new script in bench/ is picked up by itself and
must accept ``--smoke``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
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


def scripts() -> list[Path]:
    """The benchmarks: every module of bench/ that runs as a program, except the helpers."""
    return sorted(
        path
        for path in BENCH.glob("*.py")
        if path.stem not in HELPERS and 'if __name__ == "__main__":' in path.read_text()
    )


def command(script: Path) -> list[str]:
    return [sys.executable, str(script), "--smoke"]


def main(names: list[str]) -> int:
    chosen = [s for s in scripts() if not names or s.stem in names]
    unknown = sorted(set(names) - {s.stem for s in chosen})
    if unknown:
        print(
            f"no benchmark called {', '.join(unknown)}; there are: "
            + ", ".join(s.stem for s in scripts())
        )
        return 2
    results: list[tuple[str, int, float]] = []
    for script in chosen:
        print(f"\n===== bench/{script.name} --smoke", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run(command(script), cwd=ROOT, timeout=TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            print(f"bench/{script.name} --smoke did not end within {TIMEOUT:.0f}s")
            code = 124
        results.append((script.name, code, time.monotonic() - started))
    print("\n===== smoke runs")
    for name, code, seconds in results:
        print(f"  {name:<16} {'ok' if code == 0 else f'BROKEN (exit {code})':<18} {seconds:5.1f} s")
    print(f"  total {sum(s for _, _, s in results):.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
