"""A Celery worker under cProfile, every thread of it (`bench/fanout.py --profile FILE`).

Times are CPU times of each thread (``time.thread_time``), not wall-clock: waiting on the forge,
PostgreSQL or a lock costs nothing, so the profile says where the worker's CPU goes. cProfile
sees only the thread that enabled it, and a `-P threads` worker does its work in pool
threads; so each new thread runs under its own profiler, and at exit (Celery's warm shutdown on
SIGTERM) the profiles are merged into one pstats file, read with
``python -m pstats FILE`` or ``bench/profiled_worker.py --top FILE``.

    python -m bench.profiled_worker OUT.pstats -A config worker -P threads -c 16 …
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import sys
import threading
import time
from typing import Any


def install(out: str) -> None:
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile(time.thread_time)
    profiles.append(main)

    def dump() -> None:
        main.disable()
        stats: pstats.Stats | None = None
        with lock:
            for profile in profiles:
                profile.create_stats()
                if not getattr(profile, "stats", None):
                    continue
                if stats is None:
                    stats = pstats.Stats(profile)
                else:
                    stats.add(profile)
        if stats is not None:
            stats.dump_stats(out)

    atexit.register(dump)
    main.enable()


def top(path: str, count: int = 40) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(count)
    stats.sort_stats("tottime").print_stats(count)


def main(argv: list[str]) -> Any:
    if len(argv) >= 2 and argv[0] == "--top":
        top(argv[1], int(argv[2]) if len(argv) > 2 else 40)
        return 0
    out, rest = argv[0], argv[1:]
    install(out)
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *rest]
    return celery_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
