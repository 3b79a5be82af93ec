"""Memory: resident size of the web processes and the worker with 1,000 chains in flight.

Seeds 1,000 running chains of 5 running runs each (the dashboard benchmark's data set, every
chain and run then set running), serves Baton with gunicorn (gthread, as the image does) and runs
a Celery worker with its scheduler (the sweeper sees every run in flight). Then, for `--seconds`,
a signed-in reader browses (the chain list and its pages, chain pages, the release matrix, their
polls) while webhooks arrive (Merge Request and Pipeline Hooks) and the worker processes them.
The resident set size (RSS, /proc) of every process is sampled once a second. The forges are
unreachable (a closed loopback port), so the sweeper's polls of the runs in flight fail at once
and keep the worker busy: deliveries may still be queued at the end (printed, not a failure).

    .venv/bin/python bench/memory.py [--chains 1000] [--seconds 60]
    .venv/bin/python bench/memory.py --smoke   # 100 chains, 10 s (CI)

Goal F7 (issue 12): every web process < 150 MB and the worker < 250 MB RSS. The growth between
the first and the last quarter of the run is printed too (a soak would show a leak better).
Creates (and drops at the end) the PostgreSQL database `baton_bench_memory`, flushes its Redis db.
Exits 1 when the scenario breaks (a page or a webhook not answered as it should, a delivery not
processed), never for a missed goal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

DB_NAME = "baton_bench_memory"
GOAL_WEB = 150.0  # MB per web process
GOAL_WORKER = 250.0  # MB, the worker
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks" / "gitlab"
HOOKS = [
    ("Merge Request Hook", "merge_request__open.json"),
    ("Pipeline Hook", "pipeline__success.json"),
]
MB = 1024 * 1024


def rss_by_group(pgid: int) -> dict[int, float]:
    """RSS in MB of every live process of process group ``pgid``."""
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) != pgid:
                continue
            for line in Path(entry.path, "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[int(entry.name)] = int(line.split()[1]) * 1024 / MB
        except (OSError, ValueError):
            continue
    return found


class Sampler(threading.Thread):
    """RSS of the web processes and of the worker, once a second."""

    def __init__(self, groups: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.groups = groups
        self.samples: list[tuple[float, dict[str, dict[int, float]]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(
                (time.monotonic(), {k: rss_by_group(v) for k, v in self.groups.items()})
            )
            self.done.wait(1.0)

    def peak(self, group: str, *, total: bool = False) -> float:
        """The largest single process (or, ``total``, the largest sum) seen in ``group``."""
        values = [
            (sum(s[group].values()) if total else max(s[group].values(), default=0.0))
            for _, s in self.samples
        ]
        return max(values, default=0.0)

    def growth(self, group: str) -> float:
        """MB the group's largest process grew from the first to the last quarter (medians)."""
        n = len(self.samples)
        if n < 8:
            return float("nan")
        sizes = [max(s[group].values(), default=0.0) for _, s in self.samples]
        first, last = sorted(sizes[: n // 4]), sorted(sizes[-(n // 4) :])
        return last[len(last) // 2] - first[len(first) // 2]


def seed(chains: int, runs_per_chain: int) -> dict[str, Any]:
    """The dashboard benchmark's data set, every chain and run in flight, forges unreachable."""
    from django.db import connection

    from bench import dashboard

    data = dashboard.seed(chains, runs_per_chain)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chains_chain SET status = 'running', finished_at = NULL")
        cursor.execute("UPDATE chains_run SET status = 'running', finished_at = NULL")
        # Any forge call fails at once (the discard port), never leaves the machine.
        cursor.execute("UPDATE chains_forge SET api_url = 'http://127.0.0.1:9'")
        cursor.execute("ANALYZE")
    return data


def browse_and_post(
    base: str, cookie: str, ids: list[int], ref: str, seconds: float, check: common.Checks
) -> Counter[str]:
    """A reader's pages and polls, and webhooks, until ``seconds`` have passed."""
    import re

    import requests

    rng = random.Random(7)
    session = requests.Session()
    session.trust_env = False
    session.headers["Cookie"] = cookie
    hooks = [
        (event, json.dumps(json.loads((FIXTURES / name).read_text())).encode())
        for event, name in HOOKS
    ]
    answers: Counter[str] = Counter()
    hx = {"HX-Request": "true"}
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        pages = [
            "/",
            f"/?page={rng.randint(1, 30)}",
            f"/chains/{rng.choice(ids)}/",
            f"/releases/?ref={ref}",
        ]
        for url in pages:
            page = session.get(base + url, timeout=30)
            answers[f"page {page.status_code}"] += 1
            found = re.search(r'hx-get="([^"]*since=[^"]*)"', page.text)
            if found:
                poll = session.get(base + found.group(1).replace("&amp;", "&"), headers=hx)
                answers[f"poll {poll.status_code}"] += 1
        for event, body in hooks:
            key = str(uuid.uuid4())
            answer = session.post(
                f"{base}/hooks/gitlab/",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Gitlab-Event": event,
                    "X-Gitlab-Token": "s",
                    "Idempotency-Key": key,
                    "X-Gitlab-Event-UUID": key,
                },
                timeout=30,
            )
            answers[f"hook {answer.status_code}"] += 1
    check(i > 0, "the reader browsed at least once")
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=1000, help="chains in flight")
    parser.add_argument("--runs-per-chain", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="of browsing and webhooks")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads")
    parser.add_argument("--pg", default=common.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--db", default=DB_NAME, help="database to (re)create")
    parser.add_argument("--redis", default=common.DEFAULT_REDIS, help="Redis URL incl. db number")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: does the scenario still run?"
    )
    args = parser.parse_args()
    if args.smoke:
        args.chains, args.seconds = 100, 10.0
        if args.db == DB_NAME:
            args.db = common.smoke_db(DB_NAME)
    if not 10 <= args.chains <= 100_000 or not 3 <= args.runs_per_chain <= 100:
        parser.error("--chains must be 10..100000 and --runs-per-chain 3..100")
    args.seconds = min(max(args.seconds, 1.0), 3600.0)

    print(common.describe_tree())
    print(
        f"Baton memory benchmark: {args.chains} chains in flight ({args.runs_per_chain} runs"
        f" each); gunicorn -w {args.web_workers} gthread x{args.threads}; worker -P threads"
        f" -c {args.concurrency} -B" + (", SMOKE sizes" if args.smoke else "")
    )
    db_url = common.recreate_database(args.pg, args.db)
    common.flush_redis(args.redis)
    env = common.base_env(db_url, args.redis)
    check = common.Checks()
    try:
        with common.timed("migrate"):
            common.setup_django(env)
        data = seed(args.chains, args.runs_per_chain)
        from django.test import Client

        from chains.models import Chain, Delivery

        client = Client()
        client.force_login(data["user"])
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        ids = list(Chain.objects.values_list("pk", flat=True))
        with common.Children() as children:
            print(f"logs: {children.log_dir}")
            port = common.free_port()
            extra = ["-k", "gthread", "--threads", str(args.threads)]
            base = common.start_gunicorn(children, port, args.web_workers, env, extra=extra)
            common.start_worker(children, args.concurrency, env)
            groups = {"web": children.procs["gunicorn"].pid, "worker": children.procs["worker"].pid}
            sampler = Sampler(groups)
            sampler.start()
            with common.timed(f"{args.seconds:g}s of browsing and webhooks"):
                answers = browse_and_post(base, cookie, ids, data["ref"], args.seconds, check)
            with common.timed("the worker processing the webhooks"):
                # Taken up by the worker: processed, or tried (a merge request's forge is
                # unreachable here, so its delivery waits for a retry).
                pending = Delivery.objects.filter(processed_at__isnull=True, attempts=0)
                started = time.monotonic()
                while pending.exists() and time.monotonic() - started < 60:
                    time.sleep(0.5)
            sampler.done.set()
            sampler.join()
            left = pending.count()
        report(args, sampler, answers, left, check)
    finally:
        from django.db import connections

        connections.close_all()
        common.drop_database(args.pg, args.db)
        common.flush_redis(args.redis)
    return check.exit_code()


def report(
    args: argparse.Namespace,
    sampler: Sampler,
    answers: Counter[str],
    left: int,
    check: common.Checks,
) -> None:
    print()
    print(f"requests: {dict(sorted(answers.items()))}; deliveries never taken up: {left}")
    last = sampler.samples[-1][1] if sampler.samples else {}
    for group in ("web", "worker"):
        sizes = ", ".join(f"{mb:.0f}" for _, mb in sorted(last.get(group, {}).items()))
        print(f"  {group} processes at the end (MB RSS, by pid): {sizes}")
    rows = [
        [
            group,
            f"{sampler.peak(group):.0f} MB",
            f"{sampler.peak(group, total=True):.0f} MB",
            f"{sampler.growth(group):+.1f} MB",
        ]
        for group in ("web", "worker")
    ]
    print(
        common.table(
            ["", "largest process, peak", "all its processes, peak", "growth (1st → 4th quarter)"],
            rows,
        )
    )
    web, worker = sampler.peak("web"), sampler.peak("worker")
    print(
        f"goal F7: web process < {GOAL_WEB:.0f} MB and worker < {GOAL_WORKER:.0f} MB RSS with"
        f" {args.chains} chains in flight: web {web:.0f} MB, worker {worker:.0f} MB -> "
        + ("MET" if web < GOAL_WEB and worker < GOAL_WORKER else "MISSED")
    )
    check(len(sampler.samples) >= 2, "RSS sampled at least twice")
    check(answers.get("page 200", 0) > 0, f"pages answered 200 ({dict(answers)})")
    check(
        not any(k.startswith(("page 5", "poll 5", "hook 5")) for k in answers),
        "no 5xx answer",
    )
    check(answers.get("hook 202", 0) > 0, "webhooks answered 202")
    if args.smoke:  # at full size the sweeper polls every run in flight: the queue may lag
        check(left == 0, f"every delivery taken up by the worker ({left} left)")


if __name__ == "__main__":
    sys.exit(main())
