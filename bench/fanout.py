"""Fan-out: from one merge-request webhook to 100 downstream pipeline-create calls.

The sandbox forge (its own process) adds a fixed latency to every API call. Baton is served by
gunicorn with a real Celery worker (-P threads, several concurrencies, one fresh worker each) on
PostgreSQL and Redis. The figure is the time from the sandbox sending the Merge Request Hook to
Baton to the sandbox receiving the last `POST /projects/:id/pipeline`, against a naive sequential
python-gitlab loop (projects.get, then pipelines.create, per target) on the same sandbox.

Then, with idle workers and no added latency, single-target merge requests one at a time:
delivery (webhook sent) -> first pipeline-create call received.

    .venv/bin/python bench/fanout.py [--targets 100] [--latency 0.1] [--concurrency 8,16,32]
    .venv/bin/python bench/fanout.py --smoke   # 5 targets, one worker, 2 singles: seconds (CI)

Creates (and drops at the end) the PostgreSQL database `baton_bench_fanout`, flushes Redis db 13.
Exits 1 when the scenario breaks (a target not triggered, or triggered twice; a single-target MR
never triggered), never for a missed goal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

HOOK_SECRET = "bench-hook-secret"
SLUG = "sandbox"
# Issue 12's goals. F1: 100 targets at 100 ms per call, webhook -> last create.
GOAL_F1_LAST = 1.0  # seconds
GOAL_F1_SPEEDUP = 20.0  # x the sequential loop
GOAL_F1_CPU = 0.005  # worker CPU seconds per trigger
GOAL_F2_LAST = 8.0  # seconds, 1,000 targets across 1,000 projects
GOAL_F2_FLAT = 2.0  # worker CPU per target: largest size within this factor of the smallest
MAX_SINGLES = 24  # GitLab's 25 pipeline creations a minute per project, ref and user
GOAL_F3_P50 = 0.030  # seconds, single target, idle workers, 0 ms forge latency
GOAL_F3_P95 = 0.060
# Downstream pipelines sit in `running` for a long time: each sends its created / pending /
# running hooks back to Baton (real load for the worker) and then stays quiet.
SCRIPT = {"created": 0.1, "pending": 0.3, "running": 900.0}


@dataclass
class Fanout:
    label: str
    n: int = 0  # targets
    warm: bool = False  # Baton knew the targets (and their default branches) already
    hook_at: float = 0.0  # the sandbox starts sending the webhook (epoch seconds)
    config_at: float | None = None  # .baton.yml read (Baton only)
    creates: list[float] = field(default_factory=list)  # pipeline-create calls received
    calls: int = 0  # API calls the sandbox received for this fan-out
    kinds: Counter[str] = field(default_factory=Counter)  # those calls by kind
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group
    wall: float = 0.0  # seconds over which ``cpu`` was measured
    complete: bool = True
    targets: int = 0  # distinct projects that got a pipeline
    repeated: int = 0  # projects that got more than one (exactly once is the promise)

    @property
    def first(self) -> float:
        return min(self.creates) - self.hook_at if self.creates else float("nan")

    @property
    def last(self) -> float:
        return max(self.creates) - self.hook_at if self.creates else float("nan")


@dataclass
class Singles:
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # delivery -> first create, seconds
    reads: list[float] = field(default_factory=list)  # delivery -> .baton.yml read, seconds
    missing: int = 0


def baton_yml(group: str, n: int) -> str:
    lines = ["variables:", "  RELEASE_STREAM: stable", "downstream:"]
    lines += [f"  - {{key: t{i:03d}, project: {group}/t{i:03d}}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def call_kind(method: str, path: str) -> str:
    if method == "POST" and path.endswith("/pipeline"):
        return "create pipeline"
    if method == "GET" and path.count("/") == 4:  # /api/v4/projects/<id>
        return "get project"
    if "/statuses/" in path:
        return "commit status"
    if "/notes" in path:
        return "MR note"
    if "/files/" in path:
        return "read file"
    return f"{method} other"


def naive_loop(sandbox: Any, api_url: str, n: int, latency: float) -> Fanout:
    """What a sequential script does: for each target, read the project, create a pipeline."""
    import gitlab

    sandbox.reset()
    for i in range(n):
        sandbox.create_project(f"naive/t{i:03d}")
    app = sandbox.create_project("naive/app", files={"README.md": "app"})
    sandbox.add_fault(latency=latency)
    gl = gitlab.Gitlab(api_url, private_token="bench-token", timeout=30, keep_base_url=True)
    gl.session.trust_env = False
    variables = [
        {"key": "UPSTREAM_PROJECT", "value": "naive/app"},
        {"key": "UPSTREAM_SHA", "value": app["head_sha"]},
        {"key": "UPSTREAM_REF", "value": "refs/merge-requests/1/head"},
        {"key": "UPSTREAM_BRANCH", "value": "feature/x"},
        {"key": "UPSTREAM_TARGET_BRANCH", "value": "main"},
        {"key": "UPSTREAM_MR_IID", "value": "1"},
        {"key": "RELEASE_STREAM", "value": "stable"},
    ]
    result = Fanout("naive loop (python-gitlab, sequential)", hook_at=time.time())
    for i in range(n):
        project = gl.projects.get(f"naive/t{i:03d}")
        project.pipelines.create({"ref": project.default_branch, "variables": variables})
    creates = sandbox.requests(method="POST", path="/pipeline")
    result.creates = [r["time"] for r in creates if r["status"] == 201]
    calls = sandbox.requests()
    result.calls = len(calls)
    result.kinds = Counter(call_kind(r["method"], r["path"]) for r in calls)
    result.complete = len(result.creates) == n
    per_project = Counter(r["path"] for r in creates if r["status"] == 201)
    result.targets = len(per_project)
    result.repeated = sum(1 for v in per_project.values() if v > 1)
    sandbox.clear_faults()
    return result


def _flush_database(tries: int = 5) -> None:
    """Empty Baton's tables. The last round's pipelines may still have a webhook in flight, whose
    INSERT (a lock on the delivery table, then a key check on the forge) can deadlock with the
    TRUNCATE (the forge table, then the delivery table): PostgreSQL ends one; try again."""
    from django.core.management import CommandError, call_command

    for attempt in range(1, tries + 1):
        try:
            call_command("flush", interactive=False, verbosity=0)
            return
        except CommandError:
            if attempt == tries:
                raise
            time.sleep(1.0)


class Round:
    """One fresh Baton worker at one concurrency, on a clean database, queue and sandbox."""

    def __init__(
        self,
        args: argparse.Namespace,
        children: common.Children,
        sandbox: Any,
        sandbox_url: str,
        hook_url: str,
        env: dict[str, str],
        concurrency: int,
    ) -> None:
        self.args = args
        self.children = children
        self.sandbox = sandbox
        self.sandbox_url = sandbox_url
        self.hook_url = hook_url
        self.env = env
        self.c = concurrency
        self.group = f"c{concurrency}"
        self.warnings: list[str] = []

    def __enter__(self) -> Round:
        self.sandbox.reset()  # no more webhooks from the last round's pipelines
        _flush_database()
        common.flush_redis(self.args.redis)
        common.sandbox_forge(self.sandbox_url, HOOK_SECRET, ["view", "trigger"], SLUG)
        for i in range(self.args.processes):
            profile = self.args.profile if i == 0 else None
            if profile:
                profile = f"{profile}.c{self.c}"
            common.start_worker(
                self.children,
                self.c,
                self.env,
                name=self.worker_name(i),
                beat=i == 0,
                profile=profile,
            )
        return self

    def worker_name(self, i: int) -> str:
        """The first worker process keeps the historical name (its log is reported)."""
        return f"worker-c{self.c}" if i == 0 else f"worker-c{self.c}-{i + 1}"

    def __exit__(self, *exc: object) -> None:
        self.sandbox.clear_faults()
        for i in range(self.args.processes):
            # A profiled worker writes its profile at exit: give it time.
            grace = 120 if self.args.profile else 5
            self.children.stop(self.worker_name(i), grace=grace)

    def project(
        self, path: str, files: dict[str, str] | None = None, hooks: bool = True
    ) -> dict[str, Any]:
        project = self.sandbox.create_project(
            path,
            files=files or {},
            hooks=[{"url": self.hook_url, "token": HOOK_SECRET}] if hooks else [],
        )
        self.sandbox.set_script(path, **SCRIPT)
        return dict(project)

    def mr_hook_time(self, project: str, iid: int, timeout: float) -> float:
        def sent() -> float | None:
            for hook in self.sandbox.webhooks(event="Merge Request Hook"):
                payload = hook["payload"]
                if (
                    payload["project"]["path_with_namespace"] == project
                    and payload["object_attributes"]["iid"] == iid
                ):
                    if hook["status"] != 202:
                        raise RuntimeError(f"Baton answered {hook['status']}: {hook['error']}")
                    return float(hook["time"])
            return None

        return float(common.wait_for(sent, timeout, f"the webhook of {project}!{iid}"))

    def check_failures(self) -> None:
        """Stop at once when Baton failed a delivery (rather than wait for a timeout)."""
        from chains.models import Delivery

        failed = list(
            Delivery.objects.filter(outcome__in=["failed", "rejected"]).values_list(
                "event", "detail"
            )[:3]
        )
        if failed:
            raise RuntimeError(
                f"Baton failed deliveries: {failed}; see {self.children.log_dir}"
                f"/worker-c{self.c}.log"
            )
        for i in range(self.args.processes):
            self.children.check(self.worker_name(i))

    def wait_idle(self, timeout: float) -> None:
        """Until every delivery is handled, no mirror is due or running, and no run queued."""
        from chains.models import Chain, Delivery, Run

        def busy() -> list[str]:
            self.check_failures()
            checks = {
                "unprocessed deliveries": Delivery.objects.filter(processed_at__isnull=True),
                "mirrors requested": Chain.objects.filter(mirror_requested_at__isnull=False),
                "mirrors running": Chain.objects.filter(mirror_lease_until__isnull=False),
                "runs queued": Run.objects.filter(status="queued"),
            }
            return [name for name, query in checks.items() if query.exists()]

        try:
            common.wait_for(lambda: not busy(), timeout, "Baton to be idle", interval=0.1)
        except TimeoutError:
            stuck = list(
                Delivery.objects.filter(processed_at__isnull=True).values_list(
                    "pk", "event", "attempts"
                )[:5]
            )
            note = f"c={self.c}: still busy after {timeout:.0f}s: {busy()}"
            if stuck:
                note += f"; unprocessed deliveries (id, event, attempts): {stuck}"
            print(f"  warning: {note}", flush=True)
            self.warnings.append(note)
        time.sleep(0.3)

    def singles(self, count: int) -> Singles:
        """Single-target MRs, one at a time, each sent to an idle Baton."""
        result = Singles(self.c)
        upstream = f"{self.group}/single"
        target = f"{self.group}/one"
        self.project(target)
        self.project(upstream, {".baton.yml": f"downstream:\n  - project: {target}\n"})
        self.wait_idle(self.args.idle_timeout)
        timeline: list[dict[str, Any]] = []  # each MR's hook and API calls, for a profile
        for i in range(count):
            since = max((r["seq"] for r in self.sandbox.requests()), default=0)
            mr = self.sandbox.open_merge_request(
                upstream,
                f"feature/s{i}",
                target_branch="main",
                title=f"single {i}",
                files={"app.py": f"print({i})\n"},
            )
            hook_at = self.mr_hook_time(upstream, mr["iid"], 15)

            def created(since: int = since) -> list[dict[str, Any]]:
                self.check_failures()
                return [
                    r
                    for r in self.sandbox.requests(method="POST", path="/pipeline", since=since)
                    if r["status"] == 201
                ]

            try:
                first = common.wait_for(created, 15, "the pipeline-create call", interval=0.02)
            except TimeoutError:
                result.missing += 1
                continue
            result.latencies.append(min(r["time"] for r in first) - hook_at)
            reads = [
                r["time"]
                for r in self.sandbox.requests(method="GET", path="baton.yml", since=since)
            ]
            if reads:
                result.reads.append(min(reads) - hook_at)
            self.wait_idle(self.args.idle_timeout)
            timeline.append({"hook_at": hook_at, "requests": self.sandbox.requests(since=since)})
        dump = self.children.log_dir / f"requests-c{self.c}-singles.json"
        dump.write_text(json.dumps(timeline))
        return result

    def fanout(
        self, n: int, latency: float, timeout: float, *, group: str = "", warm: bool = False
    ) -> Fanout:
        """One MR whose `.baton.yml` names ``n`` targets. ``warm``: a second MR on the same
        upstream, so Baton knows the targets (rows, default branches) from the first."""
        group = group or self.group
        upstream = f"{group}/app"
        if not warm:
            for i in range(n):
                self.project(f"{group}/t{i:03d}", hooks=self.args.downstream_hooks)
            self.project(upstream, {".baton.yml": baton_yml(group, n), "README.md": "app"})
        self.wait_idle(self.args.idle_timeout)
        since = max((r["seq"] for r in self.sandbox.requests()), default=0)
        # The sandbox adds up the latencies of all its faults: one fault at a time, or each
        # round would run at the latency of all before it (until session 5 the known round ran
        # at 200 ms a call, the curve's rounds at 300-600 ms).
        self.sandbox.clear_faults()
        self.sandbox.add_fault(latency=latency)
        groups = {
            name: proc.pid
            for name, proc in self.children.procs.items()
            if name in ("gunicorn", "sandbox") or name.startswith(f"worker-c{self.c}")
        }
        cpu_before, wall_before = common.cpu_by_group(groups), time.monotonic()
        branch = "feature/warm" if warm else "feature/x"
        mr = self.sandbox.open_merge_request(
            upstream,
            branch,
            target_branch="main",
            title="Fan out",
            files={"app.py": f"print('{branch}')\n"},
        )
        how = "known targets" if warm else "new targets"
        result = Fanout(f"Baton -c {self.c}, {n} {how}", n=n, warm=warm)
        result.hook_at = self.mr_hook_time(upstream, mr["iid"], 120)
        prefix = f"/api/v4/projects/{group}%2Ft"

        def created() -> list[dict[str, Any]]:
            self.check_failures()
            return [
                r
                for r in self.sandbox.requests(method="POST", path="/pipeline", since=since)
                if r["status"] == 201 and r["path"].startswith(prefix)
            ]

        try:
            common.wait_for(lambda: len(created()) >= n, timeout, f"{n} pipelines", interval=0.1)
        except TimeoutError:
            result.complete = False
        if self.args.smoke:
            time.sleep(1.0)  # a second create for a target would show by now
        done = created()
        result.creates = [r["time"] for r in done]
        per_project = Counter(r["path"] for r in done)
        result.targets = len(per_project)
        result.repeated = sum(1 for v in per_project.values() if v > 1)
        result.cpu = {}
        for name, seconds in common.cpu_delta(cpu_before, common.cpu_by_group(groups)).items():
            kind = name.split("-")[0]  # every worker process counts as "worker"
            result.cpu[kind] = result.cpu.get(kind, 0.0) + seconds
        result.wall = time.monotonic() - wall_before
        calls = self.sandbox.requests(since=since)
        dump = (
            self.children.log_dir / f"requests-c{self.c}-{group}-{'warm' if warm else 'cold'}.json"
        )
        dump.write_text(json.dumps({"hook_at": result.hook_at, "requests": calls}))
        self.sandbox.clear_faults()
        upstream_api = f"/api/v4/projects/{group}%2Fapp/"
        reads = [
            r["time"]
            for r in calls
            if r["path"].startswith(upstream_api)
            and "baton.yml" in r["path"]
            and r["method"] == "GET"
        ]
        result.config_at = min(reads) - result.hook_at if reads else None
        last = result.hook_at + result.last if result.creates else float("inf")
        window = [r for r in calls if r["time"] <= last]
        result.calls = len(window)
        result.kinds = Counter(call_kind(r["method"], r["path"]) for r in window)
        return result


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100, help="downstream projects")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per API call")
    parser.add_argument(
        "--concurrency", default="8,16,32", help="Celery worker thread counts to try, comma-sep"
    )
    parser.add_argument(
        "--singles",
        type=int,
        default=20,
        help=f"single-target MRs per worker (at most {MAX_SINGLES}: they all trigger one project "
        "within a minute, and Baton keeps to GitLab's 25 pipeline creations a minute per project, "
        "ref and user)",
    )
    parser.add_argument(
        "--single-latency", type=float, default=0.0, help="API latency for the single-target MRs"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the sequential loop")
    parser.add_argument(
        "--no-warm",
        dest="warm",
        action="store_false",
        help="skip the second MR per fan-out (targets known to Baton: F1 is measured on it)",
    )
    parser.add_argument(
        "--curve",
        default="10,1000",
        help="more fan-out sizes, comma-sep, each on its own new projects (F2: the cost per"
        " target from 10 to 1,000); '' for none",
    )
    parser.add_argument(
        "--no-downstream-hooks",
        dest="downstream_hooks",
        action="store_false",
        help="downstream projects send no pipeline hooks back to Baton",
    )
    parser.add_argument(
        "--sandbox-as-is",
        action="store_true",
        help="keep the sandbox's ~40 ms delayed-ACK stall per keep-alive call (no TCP_NODELAY)",
    )
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn workers")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="Celery worker processes, each with the threads of --concurrency",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="wait this long for Baton to go idle between MRs, then go on with a warning",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="cap per fan-out, seconds")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="run the (first) worker under cProfile, all threads; pstats to FILE.c<N> at its exit"
        " (read with: python -m bench.profiled_worker --top FILE.c<N>)",
    )
    parser.add_argument("--pg", default=common.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--db", default="baton_bench_fanout", help="database to (re)create")
    parser.add_argument("--redis", default=common.DEFAULT_REDIS, help="Redis URL incl. db number")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: does the scenario still run?"
    )
    args = parser.parse_args()
    if args.smoke:
        args.targets, args.latency, args.concurrency, args.singles = 5, 0.02, "4", 2
        args.curve, args.idle_timeout = "3", min(args.idle_timeout, 10.0)
        args.workers, args.processes, args.timeout = 2, 1, 60.0
        if args.db == "baton_bench_fanout":
            args.db = common.smoke_db(args.db)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    curve = [int(c) for c in args.curve.split(",") if c.strip()]
    if not 1 <= args.targets <= 1000 or not concurrencies or min(concurrencies) < 1:
        parser.error("--targets must be 1..1000 and --concurrency positive integers")
    if any(not 1 <= c <= 1000 for c in curve):
        parser.error("--curve sizes must be 1..1000")
    args.singles = min(max(args.singles, 0), MAX_SINGLES)
    args.timeout = min(args.timeout, 600.0)

    print(
        f"Baton fan-out benchmark: {cores} cores, {args.targets} targets, "
        f"{args.latency * 1000:.0f} ms per API call" + (", SMOKE sizes" if args.smoke else "")
    )
    print(f"load average at the start: {load()}")
    naive: Fanout | None = None
    runs: list[Fanout] = []
    singles: list[Singles] = []
    warnings: list[str] = []
    nodelay = [] if args.sandbox_as_is else ["--nodelay"]
    with common.stack(args, sandbox=nodelay, keep_db=args.keep_db) as stack:
        children, sandbox, sandbox_url = stack.children, stack.sandbox, stack.sandbox_url
        worker_env = stack.worker_env
        stack.start_gunicorn(args.workers)
        hook_url = stack.hook_url(SLUG)

        if not args.no_naive:
            with common.timed(f"naive loop over {args.targets} targets"):
                naive = naive_loop(sandbox, sandbox_url, args.targets, args.latency)
        for c in concurrencies:
            with Round(args, children, sandbox, sandbox_url, hook_url, worker_env, c) as run:
                if args.singles:
                    with common.timed(f"c={c}: {args.singles} single-target MRs"):
                        if args.single_latency:
                            sandbox.add_fault(latency=args.single_latency)
                        singles.append(run.singles(args.singles))
                        lat = singles[-1].latencies
                        print(
                            f"  -> p50 {common.ms(common.percentile(lat, 50))}, p95 "
                            f"{common.ms(common.percentile(lat, 95))} of {len(lat)}",
                            flush=True,
                        )
                        sandbox.clear_faults()
                for size in [args.targets, *curve]:
                    group = run.group if size == args.targets else f"{run.group}-n{size}"
                    for warm in [False, True] if args.warm else [False]:
                        how = "known" if warm else "new"
                        with common.timed(f"c={c}: fan-out to {size} {how} targets"):
                            try:
                                res = run.fanout(
                                    size, args.latency, args.timeout, group=group, warm=warm
                                )
                            except TimeoutError as exc:
                                res = Fanout(f"Baton -c {c}, {size} {how} targets", n=size)
                                res.complete = False
                                warnings.append(f"c={c}, {size} {how} targets: {exc}")
                            runs.append(res)
                            print(
                                f"  -> last create {res.last:.2f} s, "
                                f"{len(res.creates)} of {size} created, worker CPU "
                                f"{per_target_cpu(res) * 1000:.1f} ms per target",
                                flush=True,
                            )
                warnings += run.warnings

    report(args, cores, naive, runs, singles)
    for note in warnings:
        print(f"warning: {note}")
    check = common.Checks()
    for res in [*([naive] if naive else []), *runs]:
        n = res.n or args.targets
        check(res.complete, f"{res.label}: {len(res.creates)} of {n} pipelines created")
        check(res.targets == n, f"{res.label}: {res.targets} targets got a pipeline")
        check(not res.repeated, f"{res.label}: {res.repeated} targets got more than one pipeline")
    for s in singles:
        check(
            len(s.latencies) == args.singles and not s.missing,
            f"-c {s.concurrency}: {len(s.latencies)} of {args.singles} single-target MRs triggered",
        )
    return check.exit_code()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def per_target_cpu(res: Fanout) -> float:
    """Worker CPU seconds per target over the fan-out (hooks coming back included)."""
    return res.cpu.get("worker", float("nan")) / res.n if res.n else float("nan")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report(
    args: argparse.Namespace,
    cores: int,
    naive: Fanout | None,
    runs: list[Fanout],
    singles: list[Singles],
) -> None:
    print()
    print(
        f"fan-out: 1 MR -> N pipeline creates, {args.latency * 1000:.0f} ms added to every API"
        " call; times from the webhook being sent (Baton) or the loop's start (naive)"
    )
    rows = []
    base = naive.last if naive else float("nan")
    for res in [*([naive] if naive else []), *runs]:
        rows.append(
            [
                res.label,
                "-" if res.config_at is None else common.ms(res.config_at),
                common.ms(res.first),
                f"{res.last:.2f} s" + ("" if res.complete else f" (only {len(res.creates)})"),
                str(res.calls),
                str(res.kinds.get("get project", 0)),
                f"{per_target_cpu(res) * 1000:.1f} ms" if res.cpu else "-",
                f"{base / res.last:.1f}x" if naive and res.n in (0, args.targets) else "-",
            ]
        )
    print(
        common.table(
            [
                "",
                "-> .baton.yml read",
                "-> first create",
                "-> last create",
                "API calls",
                "project GETs",
                "worker CPU/target",
                "vs loop",
            ],
            rows,
        )
    )
    for res in [*([naive] if naive else []), *runs]:
        kinds = ", ".join(f"{k} {v}" for k, v in res.kinds.most_common())
        print(f"  {res.label}: {kinds}")
        if res.cpu:
            cpu = ", ".join(f"{k} {v / res.wall:.2f}" for k, v in res.cpu.items())
            print(f"    CPU in cores over those {res.wall:.1f} s: {cpu}")
    sizes = sorted({r.n for r in runs})
    if len(sizes) > 1:
        print()
        print("cost per target by fan-out size (F2's curve): last create / N, worker CPU / N")
        crows = []
        for size in sizes:
            for res in (r for r in runs if r.n == size):
                crows.append(
                    [
                        str(size),
                        "known" if res.warm else "new",
                        f"{res.last:.2f} s",
                        common.ms(res.last / size),
                        f"{per_target_cpu(res) * 1000:.1f} ms",
                    ]
                )
        print(
            common.table(
                ["targets", "targets are", "-> last create", "per target", "worker CPU/target"],
                crows,
            )
        )
    if singles:
        print()
        print(
            f"single-target MRs on an idle worker, {args.single_latency * 1000:.0f} ms added"
            " latency: webhook sent -> pipeline-create call received"
        )
        srows = []
        for s in singles:
            lat = s.latencies
            srows.append(
                [
                    f"-c {s.concurrency}",
                    f"{len(lat)}" + (f" (+{s.missing} missing)" if s.missing else ""),
                    common.ms(common.percentile(s.reads, 50)),
                    common.ms(common.percentile(lat, 50)),
                    common.ms(common.percentile(lat, 95)),
                    common.ms(max(lat, default=float("nan"))),
                    common.ms(lat[0]) if lat else "-",
                    " ".join(f"{x * 1000:.0f}" for x in lat),
                ]
            )
        print(
            common.table(
                [
                    "worker",
                    "MRs",
                    "p50 -> .baton.yml read",
                    "p50",
                    "p95",
                    "max",
                    "first (cold)",
                    "all (ms)",
                ],
                srows,
            )
        )
    print()
    print(f"machine: {cores} cores (sandbox, gunicorn, worker, PostgreSQL, Redis and this script)")
    print(f"load average at the end: {load()}")
    goals(args, naive, runs, singles)


def goals(
    args: argparse.Namespace, naive: Fanout | None, runs: list[Fanout], singles: list[Singles]
) -> None:
    """Issue 12's goal lines (F1-F3), each MET or MISSED; a figure not measured says so."""

    def best(candidates: list[Fanout]) -> Fanout | None:
        done = [r for r in candidates if r.complete]
        return min(done, key=lambda r: r.last, default=None)

    f1 = [r for r in runs if r.n == args.targets]
    hot = best([r for r in f1 if r.warm]) or best(f1)
    if hot is None:
        print("goal F1: not measured (no complete fan-out)")
    else:
        speedup = naive.last / hot.last if naive else float("nan")
        cpu = per_target_cpu(hot)
        gets = hot.kinds.get("get project", 0)
        ok = (
            hot.last <= GOAL_F1_LAST
            and (naive is None or speedup >= GOAL_F1_SPEEDUP)
            and cpu <= GOAL_F1_CPU
            and (gets == 0 or not hot.warm)
        )
        print(
            f"goal F1: {hot.n} targets ({'known' if hot.warm else 'new'}), "
            f"{args.latency * 1000:.0f} ms per call: last create {hot.last:.2f} s (<= "
            f"{GOAL_F1_LAST:.1f} s), {speedup:.1f}x the loop (>= {GOAL_F1_SPEEDUP:.0f}x), "
            f"worker CPU {cpu * 1000:.1f} ms per trigger (<= {GOAL_F1_CPU * 1000:.0f} ms), "
            f"{gets} project GETs (0) -> {verdict(ok)}"
        )
        cold = best([r for r in f1 if not r.warm])
        if cold is not None and hot.warm:
            print(
                f"        (new targets, each confirmed on the forge first: last create "
                f"{cold.last:.2f} s, {cold.kinds.get('get project', 0)} project GETs)"
            )
    big = [r for r in runs if r.n >= 1000]
    if not big:
        print("goal F2: not measured (no fan-out of 1,000 targets; --curve 10,1000)")
    else:
        top = best([r for r in big if r.warm]) or best(big)
        least = min(x.n for x in runs)
        small = [r for r in runs if top is not None and r.n == least and r.warm == top.warm]
        if top is None or not small:
            print("goal F2: not measured (a fan-out did not complete)")
        else:
            flat = per_target_cpu(top) / max(min(per_target_cpu(r) for r in small), 1e-9)
            ok = top.last <= GOAL_F2_LAST and flat <= GOAL_F2_FLAT
            print(
                f"goal F2: {top.n} targets ({'known' if top.warm else 'new'}): last create "
                f"{top.last:.2f} s (<= {GOAL_F2_LAST:.0f} s); worker CPU per target "
                f"{flat:.1f}x the {small[0].n}-target fan-out's (<= {GOAL_F2_FLAT:.0f}x) -> "
                + verdict(ok)
            )
    lat = [x for s in singles for x in s.latencies]
    if not lat:
        print("goal F3: not measured (--singles 0)")
    else:
        for s in singles:
            p50 = common.percentile(s.latencies, 50)
            p95 = common.percentile(s.latencies, 95)
            print(
                f"goal F3: single target, idle worker -c {s.concurrency}, "
                f"{args.single_latency * 1000:.0f} ms forge latency: delivery -> first create "
                f"p50 {p50 * 1000:.0f} ms (<= {GOAL_F3_P50 * 1000:.0f}), p95 {p95 * 1000:.0f} ms "
                f"(<= {GOAL_F3_P95 * 1000:.0f}) -> "
                + verdict(p50 <= GOAL_F3_P50 and p95 <= GOAL_F3_P95 and not s.missing)
            )


if __name__ == "__main__":
    sys.exit(main())
