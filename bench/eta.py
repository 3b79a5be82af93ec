"""ETA accuracy: how close a running chain's expected finish (chains/eta.py) comes to its real one.

The sandbox forge runs every downstream pipeline for a scripted time with noise (each pipeline's
running time is the target's base time times a normal factor, sd ``--noise``). Baton is served by
gunicorn with a real Celery worker on PostgreSQL and Redis. The upstream project triggers

    build (base 1.0 x --unit) -> deploy (0.8 x, depends_on build);  docs (1.4 x) beside them

``--history`` merge requests build each target's history, then ``--chains`` more are measured:
as soon as one of a measured chain's runs is running, the bench reads the chain's estimate (what
the chain page, the API and the summary comment show at that moment) and, when the chain has
finished, compares the median estimate with the real finish. The figure is the median absolute
error as a share of the chain's actual duration (its creation to its finish); goal under 20 %.
Also printed: how often the real finish came before the 90 % estimate.

    .venv/bin/python bench/eta.py [--history 20] [--chains 10] [--unit 3] [--noise 0.15]
    .venv/bin/python bench/eta.py --smoke   # 3 history chains, 2 measured, short pipelines (CI)

Creates (and drops at the end) the PostgreSQL database `baton_bench_eta`, flushes Redis db 13.
Exits 1 when the scenario breaks (a chain that does not finish green or never shows an estimate),
never for a missed goal.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

HOOK_SECRET = "bench-hook-secret"
SLUG = "sandbox"
GOAL = 0.20  # median absolute error, share of the actual duration
UPSTREAM = "eta/app"
TARGETS = {"build": 1.0, "deploy": 0.8, "docs": 1.4}  # base running time, in units
BATON_YML = """downstream:
  - {key: build, project: eta/build}
  - {key: deploy, project: eta/deploy, depends_on: [build]}
  - {key: docs, project: eta/docs}
"""


@dataclass
class Measured:
    chain: int
    created: datetime
    p50: datetime | None = None
    p90: datetime | None = None
    finished: datetime | None = None
    status: str = ""

    @property
    def duration(self) -> float:
        assert self.finished is not None
        return (self.finished - self.created).total_seconds()

    @property
    def error(self) -> float:
        assert self.p50 is not None
        return abs((self.p50 - (self.finished or self.p50)).total_seconds()) / self.duration


class Bench:
    def __init__(self, args: argparse.Namespace, sandbox: Any, hook_url: str) -> None:
        self.args, self.sandbox, self.hook_url = args, sandbox, hook_url
        self.rng = random.Random(args.seed)
        self.iid = 0

    def setup(self, sandbox_url: str) -> None:
        common.sandbox_forge(sandbox_url, HOOK_SECRET, ["view", "trigger"], SLUG)
        hooks = [{"url": self.hook_url, "token": HOOK_SECRET}]
        for key in TARGETS:
            self.sandbox.create_project(f"eta/{key}", hooks=hooks)
        self.sandbox.create_project(
            UPSTREAM, files={".baton.yml": BATON_YML, "README.md": "app"}, hooks=hooks
        )

    def script(self) -> None:
        """Each target's next pipeline: its base time with noise (never under a tenth of it)."""
        for key, base in TARGETS.items():
            factor = max(0.1, self.rng.gauss(1.0, self.args.noise))
            running = base * self.args.unit * factor
            self.sandbox.set_script(f"eta/{key}", created=0.05, pending=0.1, running=running)

    def chain(self, measure: bool) -> Measured:
        from chains import eta
        from chains.models import Chain, Delivery
        from chains.status import FINISHED

        self.script()
        self.iid += 1
        mr = self.sandbox.open_merge_request(
            UPSTREAM,
            f"feature/{self.iid}",
            target_branch="main",
            title=f"change {self.iid}",
            files={"app.py": f"print({self.iid})\n"},
        )

        def created() -> Chain | None:
            failed = Delivery.objects.filter(outcome__in=["failed", "rejected"]).first()
            if failed:
                raise RuntimeError(f"Baton failed a delivery: {failed.detail}")
            return (
                Chain.objects.filter(repository__path=UPSTREAM, change_number=mr["iid"])
                .order_by("-id")
                .first()
            )

        try:
            chain = common.wait_for(created, 90, f"the chain of {UPSTREAM}!{mr['iid']}", 0.05)
        except TimeoutError:
            waiting = list(
                Delivery.objects.filter(processed_at__isnull=True).values_list(
                    "pk", "event", "attempts"
                )[:5]
            )
            print(f"  {UPSTREAM}!{mr['iid']}: no chain after 90 s; unprocessed: {waiting}")
            return Measured(0, datetime.now(UTC), status="never started")
        got = Measured(chain.pk, chain.created_at)
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            chain.refresh_from_db()
            runs = list(chain.runs.all())
            if measure and got.p50 is None and any(r.status == "running" for r in runs):
                estimate = eta.for_chain(chain, runs)
                got.p50, got.p90 = estimate.p50, estimate.p90
                if not estimate.known:
                    print(f"  chain {chain.pk}: {eta.describe(estimate)} ({estimate.missing})")
                    measure = False
            if chain.status in FINISHED and all(r.status in FINISHED for r in runs):
                got.status = chain.status
                got.finished = max((r.finished_at for r in runs if r.finished_at), default=None)
                got.finished = got.finished or chain.finished_at
                return got
            time.sleep(0.05)
        got.status = "timed out"
        return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=20, help="chains that build the history")
    parser.add_argument("--chains", type=int, default=10, help="chains measured")
    parser.add_argument("--unit", type=float, default=3.0, help="seconds of one duration unit")
    parser.add_argument("--noise", type=float, default=0.15, help="sd of the duration factor")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=120.0, help="cap per chain, seconds")
    parser.add_argument("--pg", default=common.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--db", default="baton_bench_eta", help="database to (re)create")
    parser.add_argument("--redis", default=common.DEFAULT_REDIS, help="Redis URL incl. db number")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: does the scenario still run?"
    )
    args = parser.parse_args()
    if args.smoke:
        args.history, args.chains, args.unit, args.timeout = 3, 2, 1.0, 60.0
        if args.db == "baton_bench_eta":
            args.db = common.smoke_db(args.db)
    if not 1 <= args.history <= 200 or not 1 <= args.chains <= 200 or args.unit <= 0:
        parser.error("--history and --chains must be 1..200, --unit positive")
    args.noise = min(max(args.noise, 0.0), 1.0)

    print(
        f"Baton ETA benchmark: {args.history} history chains, {args.chains} measured, unit "
        f"{args.unit:g} s, noise sd {args.noise:.0%}" + (", SMOKE sizes" if args.smoke else "")
    )
    history: list[Measured] = []
    measured: list[Measured] = []
    env = {"BATON_ETA_HISTORY": str(args.history)}
    with common.stack(args, env=env, keep_db=args.keep_db) as stack:
        stack.start_gunicorn(2)
        stack.start_worker(8)
        bench = Bench(args, stack.sandbox, stack.hook_url(SLUG))
        bench.setup(stack.sandbox_url)
        with common.timed(f"{args.history} chains of history"):
            history = [bench.chain(measure=False) for _ in range(args.history)]
        with common.timed(f"{args.chains} measured chains"):
            measured = [bench.chain(measure=True) for _ in range(args.chains)]

    estimated = [m for m in measured if m.p50 is not None and m.finished is not None]
    report(args, estimated)
    check = common.Checks()
    for m in [*history, *measured]:
        check(m.status == "success", f"chain {m.chain} finished {m.status or 'nowhere'}")
    check(
        len(estimated) == len(measured),
        f"{len(estimated)} of {len(measured)} measured chains showed an estimate",
    )
    return check.exit_code()


def report(args: argparse.Namespace, estimated: list[Measured]) -> None:
    print()
    rows = [
        [
            str(m.chain),
            f"{m.duration:.2f} s",
            f"{((m.p50 or m.created) - m.created).total_seconds():.2f} s",
            f"{((m.p90 or m.created) - m.created).total_seconds():.2f} s",
            f"{m.error:.1%}",
        ]
        for m in estimated
    ]
    print(common.table(["chain", "actual", "estimate (p50)", "estimate (90 %)", "error"], rows))
    if not estimated:
        print(f"ETA median absolute error: no estimate -> goal < {GOAL:.0%}: MISSED")
        return
    errors = [m.error for m in estimated]
    median = common.percentile(errors, 50)
    covered = sum(
        m.finished is not None and m.p90 is not None and m.finished <= m.p90 for m in estimated
    )
    print(
        f"ETA p90 covered the real finish in {covered} of {len(estimated)} chains "
        f"(history: last {args.history} green runs per target)"
    )
    print(
        f"ETA median absolute error {median:.1%} of the actual duration "
        f"(goal < {GOAL:.0%}) -> " + ("MET" if median < GOAL else "MISSED")
    )


if __name__ == "__main__":
    sys.exit(main())
