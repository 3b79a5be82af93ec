"""Forge API calls per tracked run: Baton (webhooks, and webhooks lost) against two client
polling patterns, plus the pacing of a 100-target GitHub fan-out.

One sandbox forge (its own process, ``--time-scale``), Baton under gunicorn with a Celery worker
(``-B``) on PostgreSQL and Redis, and a simulated stretch of work (10 minutes by default) that
runs in ``minutes * 60 / scale`` real seconds. Every figure is counted from the sandbox's request
log of that one run; calls are told apart by repository path:

- ``wh/*``    Baton, webhooks working (GitHub workflow dispatch with ``return_run_details``;
              GitLab pipeline create);
- ``lost/*``  Baton, the same, with ``workflow_run`` / ``Pipeline Hook`` deliveries dropped by a
              sandbox fault, so runs are tracked by the polling fallback only;
- ``ptrig/*`` the ``pipeline-trigger`` pattern (python-gitlab: trigger, GET every 5 s);
- ``taw/*``   the trigger-and-wait actions pattern (requests: list runs, dispatch, list runs
              until the new one shows, GET every 10 s);
- ``fan/*``   one pull request fanned out to 100 GitHub workflow dispatches, on its own token.

Baton's clocks (BATON_POLL_AFTER, BATON_SWEEP_INTERVAL, BATON_STALE_AFTER) and the clients'
sleeps are divided by the same scale, so the counts are those of the simulated stretch. GitHub's
1 s between writes is not scaled: the fan-out is measured in real seconds.

    .venv/bin/python bench/api_calls.py [--scale 5] [--minutes 10] [--changes 5] [--fanout 100]
    .venv/bin/python bench/api_calls.py --smoke   # one change per side, short runs, 3-target
                                                  # fan-out, one simulated minute at x10 (CI)

Creates (and drops at the end) the PostgreSQL database `baton_bench_api_calls`, flushes Redis
db 13. Exits 1 when the scenario breaks (a run of Baton's or a client's not reaching its end,
runs with lost webhooks never polled, a fan-out target not dispatched), never for a missed goal.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

HOOK_SECRET = "bench-hook-secret"
WORKFLOW_FILE = "preview.yml"
WORKFLOW = """\
name: Preview
run-name: "Preview (baton run ${{ inputs.BATON_RUN_ID }})"
on:
  workflow_dispatch:
    inputs:
      UPSTREAM_REF: {required: false}
      UPSTREAM_SHA: {required: false}
      UPSTREAM_PROJECT: {required: false}
      BATON_RUN_ID: {required: false}
jobs:
  preview: {runs-on: ubuntu-latest, steps: [{run: echo preview}]}
"""
# Simulated seconds. Every change sets off one short and one long run on each side.
SCRIPTS: dict[str, dict[str, float]] = {
    "fast": {"created": 5, "pending": 25, "running": 90},
    "slow": {"created": 5, "pending": 25, "running": 300},
}
FAN_SCRIPT: dict[str, float] = {"created": 1, "pending": 4, "running": 20}
# --smoke: runs short enough to end inside one simulated minute, and still outlive one poll
# interval (BATON_POLL_AFTER, 60 simulated s) so that the polling fallback has work to do.
SMOKE_SCRIPTS: dict[str, dict[str, float]] = {
    "fast": {"created": 2, "pending": 5, "running": 15},
    "slow": {"created": 2, "pending": 5, "running": 40},
}
CHANGE_EVERY = 60.0  # simulated seconds between changes
# Baton's defaults (config/settings.py), in simulated seconds; divided by the scale.
BATON_CLOCKS = {
    "BATON_POLL_AFTER": 60.0,
    "BATON_SWEEP_INTERVAL": 5.0,
    "BATON_STALE_AFTER": 30.0,
    "BATON_HOOK_SILENCE": 60.0,
}
PTRIG_SLEEP = 5.0  # pipeline-trigger's --sleep default
TAW_INTERVAL = 10.0  # trigger-workflow-and-wait's wait_interval default
GITLAB_DONE = {"success", "failed", "canceled", "skipped", "manual"}

GOAL_CALLS_PER_RUN = 2.0
GOAL_304_SHARE = 0.90
GOAL_FANOUT_OVER_FLOOR = 0.05
# F6 (issue 12): polling is one list call per repository per poll interval for all its open
# runs, not one call per run. Allowance over one: a run joining a repository's open runs may
# bring that repository's next poll forward once (its first poll interval starts at its send).
GOAL_F6_LISTS_PER_INTERVAL = 1.25
WRITE_SPACING = 1.0  # GitHub: at least 1 s between writes per token (bots/forges/github.py)

# Baton forges: slug -> (kind, scenario prefix, token)
FORGES = {
    "gh-wh": ("github", "wh", "ghp_bench_webhooks"),
    "gl-wh": ("gitlab", "wh", "glpat-bench-webhooks"),
    "gh-lost": ("github", "lost", "ghp_bench_lost"),
    "gl-lost": ("gitlab", "lost", "glpat-bench-lost"),
    "gh-fan": ("github", "fan", "ghp_bench_fanout"),
}


# --- the sandbox in its own process ---------------------------------------------------------


def serve_sandbox(port: int, scale: float) -> None:
    from sandbox.server import SandboxRequestHandler, SandboxServer

    SandboxRequestHandler.disable_nagle_algorithm = True
    server = SandboxServer("127.0.0.1", port, time_scale=scale)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


# --- the two client patterns ----------------------------------------------------------------


@dataclass
class ClientRun:
    pattern: str
    project: str
    started: float = 0.0
    finished: float | None = None
    status: str = ""
    error: str = ""


def pipeline_trigger(
    api_url: str, project: str, token: str, interval: float, stop: threading.Event, run: ClientRun
) -> None:
    """What `pipeline-trigger` does: read the project, trigger, GET the pipeline every --sleep."""
    import gitlab

    gl = gitlab.Gitlab(api_url, private_token="ptrig-api-token", timeout=30, keep_base_url=True)
    gl.session.trust_env = False
    proj = gl.projects.get(project)
    pipeline = proj.trigger_pipeline(
        "main", token, variables={"UPSTREAM_PROJECT": "ptrig/app", "UPSTREAM_REF": "main"}
    )
    status = pipeline.status
    while status not in GITLAB_DONE:
        if stop.wait(interval):
            run.error = "stopped"
            return
        status = proj.pipelines.get(pipeline.id).status
    run.status = status


def trigger_and_wait(
    api_url: str, repo: str, interval: float, stop: threading.Event, run: ClientRun
) -> None:
    """What the trigger-and-wait actions do: list runs, dispatch (204), list runs again until a
    new one shows, then GET it every wait_interval until it completes."""
    import requests

    http = requests.Session()
    http.trust_env = False
    http.headers.update(
        {"Authorization": "token ghp_bench_taw", "Accept": "application/vnd.github+json"}
    )
    base = f"{api_url}/api/v3/repos/{repo}/actions"
    runs_url = f"{base}/workflows/{WORKFLOW_FILE}/runs"

    def newest() -> list[dict[str, Any]]:
        answer = http.get(runs_url, params={"per_page": 10}, timeout=30)
        answer.raise_for_status()
        return list(answer.json()["workflow_runs"])

    before = max((r["id"] for r in newest()), default=0)
    answer = http.post(
        f"{base}/workflows/{WORKFLOW_FILE}/dispatches",
        json={"ref": "main", "inputs": {"UPSTREAM_PROJECT": "taw/app"}},
        timeout=30,
    )
    answer.raise_for_status()
    run_id = None
    while run_id is None:
        if stop.wait(interval):
            run.error = "stopped"
            return
        fresh = [r["id"] for r in newest() if r["id"] > before]
        run_id = min(fresh) if fresh else None
    status = ""
    while status != "completed":
        if stop.wait(interval):
            run.error = "stopped"
            return
        answer = http.get(f"{base}/runs/{run_id}", timeout=30)
        answer.raise_for_status()
        status = answer.json()["status"]
        run.status = answer.json().get("conclusion") or status


def run_client(fn: Callable[..., None], run: ClientRun, *args: Any) -> threading.Thread:
    def body() -> None:
        run.started = time.time()
        try:
            fn(*args, run)
        except Exception as exc:  # reported, not raised: one client's failure is a figure
            run.error = f"{type(exc).__name__}: {exc}"[:200]
        run.finished = time.time()

    thread = threading.Thread(target=body, name=f"{run.pattern}-{run.project}", daemon=True)
    thread.start()
    return thread


# --- the world --------------------------------------------------------------------------------


def baton_yml(prefix: str, github: bool) -> str:
    lines = ["downstream:"]
    for key in SCRIPTS:
        extra = f", workflow: {WORKFLOW_FILE}" if github else ""
        lines.append(f"  - {{key: {key}, project: {prefix}/{key}{extra}}}")
    return "\n".join(lines) + "\n"


def fan_yml(n: int) -> str:
    lines = ["downstream:"]
    lines += [
        f"  - {{key: t{i:03d}, project: fan/t{i:03d}, workflow: {WORKFLOW_FILE}}}" for i in range(n)
    ]
    return "\n".join(lines) + "\n"


def set_up(sandbox: Any, sandbox_url: str, baton_url: str, fanout: int) -> dict[str, str]:
    """Baton's forges and grants, the sandbox's repositories, projects and faults. Returns the
    pipeline-trigger tokens by project."""
    from django.contrib.auth import get_user_model

    from chains.models import Forge, Grant, Identity

    sandbox.reset()
    alice = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    Grant.objects.create(
        user=alice, projects="*", actions=["view", "trigger", "retry", "cancel", "deploy"]
    )
    for slug, (kind, _, token) in FORGES.items():
        forge = Forge.objects.create(
            kind=kind,
            slug=slug,
            name=f"Sandbox {slug}",
            api_url=f"{sandbox_url}/api/v3" if kind == "github" else sandbox_url,
            token=token,
            webhook_secret=HOOK_SECRET,
            bot_username="baton-bot",
        )
        Identity.objects.create(forge=forge, username="alice", user=alice)

    def github_repo(name: str, slug: str | None, files: dict[str, str], script: dict[str, float]):
        hooks = (
            [{"url": f"{baton_url}/hooks/{slug}/", "secret": HOOK_SECRET, "events": ["*"]}]
            if slug
            else []
        )
        sandbox.create_github_repo(name, files=files, hooks=hooks)
        sandbox.set_run_script(name, **script)

    def gitlab_project(
        path: str, slug: str | None, files: dict[str, str], script: dict[str, float]
    ):
        hooks = [{"url": f"{baton_url}/hooks/{slug}/", "token": HOOK_SECRET}] if slug else []
        sandbox.create_project(path, files=files, hooks=hooks)
        sandbox.set_script(path, **script)

    workflow = {f".github/workflows/{WORKFLOW_FILE}": WORKFLOW}
    for prefix in ("wh", "lost"):
        github_repo(f"{prefix}/app", f"gh-{prefix}", {".baton.yml": baton_yml(prefix, True)}, {})
        gitlab_project(
            f"{prefix}/app", f"gl-{prefix}", {".baton.yml": baton_yml(prefix, False)}, {}
        )
        for key, script in SCRIPTS.items():
            github_repo(f"{prefix}/{key}", f"gh-{prefix}", workflow, script)
            gitlab_project(f"{prefix}/{key}", f"gl-{prefix}", {"README.md": key}, script)
    tokens = {}
    for key, script in SCRIPTS.items():
        github_repo(f"taw/{key}", None, workflow, script)
        gitlab_project(f"ptrig/{key}", None, {"README.md": key}, script)
        tokens[f"ptrig/{key}"] = sandbox.create_trigger(f"ptrig/{key}", "pipeline-trigger")
    if fanout:
        github_repo("fan/app", "gh-fan", {".baton.yml": fan_yml(fanout)}, {})
        for i in range(fanout):
            github_repo(f"fan/t{i:03d}", "gh-fan", workflow, FAN_SCRIPT)
    # Webhooks lost: the run/pipeline events to Baton's `*-lost` forges never arrive.
    for event in ("workflow_run", "Pipeline Hook"):
        sandbox.add_fault(mode="drop_webhooks", path=r"/hooks/g[hl]-lost/", event=event)
    return tokens


def open_change(sandbox: Any, forge: str, prefix: str, n: int) -> None:
    files = {f"change{n}.txt": f"change {n}\n"}
    if forge == "github":
        sandbox.open_pull_request(
            f"{prefix}/app", f"feature/c{n}", base="main", title=f"Change {n}", files=files
        )
    else:
        sandbox.open_merge_request(
            f"{prefix}/app", f"feature/c{n}", target_branch="main", title=f"Change {n}", files=files
        )


# --- counting ---------------------------------------------------------------------------------


@dataclass
class Call:
    forge: str  # github | gitlab
    repo: str  # owner/name ("" for /user, /users, …)
    rest: str  # the path after the repository
    record: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.record["method"])

    @property
    def scenario(self) -> str:
        return self.repo.split("/", 1)[0] if self.repo else ""

    @property
    def upstream(self) -> bool:
        return self.repo.endswith("/app")

    @property
    def write(self) -> bool:
        return self.method in ("POST", "PATCH", "PUT", "DELETE")


def parse(record: dict[str, Any], ids: dict[int, str]) -> Call:
    path = str(record["path"])
    if path.startswith("/api/v3/repos/"):
        parts = path[len("/api/v3/repos/") :].split("/", 2)
        repo = unquote("/".join(parts[:2]))
        rest = "/" + parts[2] if len(parts) > 2 else ""
        return Call("github", repo, unquote(rest), record)
    if path.startswith("/api/v4/projects/"):
        ident, _, rest = path[len("/api/v4/projects/") :].partition("/")
        repo = unquote(ident)
        if repo.isdigit():
            repo = ids.get(int(repo), repo)
        return Call("gitlab", repo, unquote("/" + rest if rest else ""), record)
    return Call("github" if path.startswith("/api/v3") else "gitlab", "", path, record)


def _shape(rest: str) -> str:
    return re.sub(r"/[0-9a-f]{40}|/\d+", "/:id", rest) or "/"


def classify(call: Call) -> tuple[str, str]:
    """(group, kind): group is trigger | config | track | mirror | plan | other."""
    m, rest = call.method, call.rest
    if call.forge == "github":
        if m in ("POST", "PATCH") and ("/comments" in rest):
            return "mirror", "comment"
        if m == "POST" and rest.startswith("/statuses/"):
            return "mirror", "commit status"
        if m == "POST" and rest.startswith("/check-runs"):
            return "mirror", "check run"
        if call.upstream or not call.repo:
            return "plan", f"{m} {_shape(rest)}"
        if m == "POST" and rest.endswith("/dispatches"):
            return "trigger", "dispatch"
        if m == "GET" and rest == "":
            return "trigger", "read repository"
        if m == "GET" and rest.startswith("/contents/.github/workflows/"):
            return "trigger", "read workflow file"
        if m == "GET" and rest.startswith("/contents/") and rest.endswith(".baton.yml"):
            return "config", "read .baton.yml"
        if m == "GET" and re.fullmatch(r"/actions/runs/\d+", rest):
            return "track", "get run"
        if m == "GET" and rest.endswith("/runs"):
            return "track", "list runs"
        return "other", f"{m} {rest}"
    if m in ("POST", "PUT") and "/notes" in rest:
        return "mirror", "MR note"
    if m == "POST" and rest.startswith("/statuses/"):
        return "mirror", "commit status"
    if call.upstream or not call.repo:
        return "plan", f"{m} {_shape(rest)}"
    if m == "POST" and rest.endswith("/pipeline"):
        return "trigger", "create pipeline"
    if m == "GET" and rest == "":
        return "trigger", "read project"
    if m == "GET" and rest.startswith("/repository/files/"):
        return "config", "read .baton.yml"
    if m == "GET" and re.fullmatch(r"/pipelines/\d+", rest):
        return "track", "get pipeline"
    if m == "GET" and re.fullmatch(r"/pipelines/\d+/variables", rest):
        return "track", "pipeline variables"
    if m == "GET" and rest == "/pipelines":
        return "track", "list pipelines"
    return "other", f"{m} {rest}"


@dataclass
class Row:
    label: str
    forge: str
    runs: int = 0
    changes: int = 0
    groups: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    counted: int = 0  # GitHub: calls that counted against the rate limit (trigger+track)
    polls: int = 0  # track calls: list calls and per-run reads
    polls_304: int = 0
    lists: int = 0  # list calls ("list runs", "list pipelines")
    reads: int = 0  # per-run reads ("get run", "get pipeline")
    mirror_writes: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # trigger+track answers >= 400

    @property
    def per_run(self) -> float:
        calls = self.groups["trigger"] + self.groups["config"] + self.groups["track"]
        return calls / self.runs if self.runs else float("nan")


def tally(label: str, forge: str, calls: list[Call], runs: int, changes: int) -> Row:
    row = Row(label, forge, runs=runs, changes=changes)
    for call in calls:
        group, kind = classify(call)
        row.groups[group] += 1
        row.kinds[f"{group}: {kind}"] += 1
        status = call.record.get("status") or 0
        if group in ("trigger", "config", "track"):
            row.counted += bool(call.record.get("rate_limit_counted", forge == "gitlab"))
            if status >= 400 or status == 0:
                row.errors[f"{kind} {status}"] += 1
            if kind in ("get run", "get pipeline", "list runs", "list pipelines"):
                row.polls += 1
                row.polls_304 += status == 304
                row.lists += kind.startswith("list")
                row.reads += kind.startswith("get")
        if group == "mirror":
            row.mirror_writes += 1
    return row


# --- the benchmark ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scale = args.scale
        self.stop = threading.Event()
        self.clients: list[tuple[ClientRun, threading.Thread]] = []
        self.warnings: list[str] = []
        self.timeline: dict[str, float] = {}
        self.fan_owed = 0

    def sim(self, seconds: float) -> float:
        """Simulated seconds -> real seconds."""
        return seconds / self.scale

    def baton_runs(self, slugs: list[str]) -> dict[str, int]:
        from chains.models import Run

        return dict(
            Counter(
                Run.objects.filter(chain__forge__slug__in=slugs).values_list("status", flat=True)
            )
        )

    def baton_busy(self, slugs: list[str]) -> list[str]:
        from chains.models import Chain, Delivery, Run

        checks = {
            "unprocessed deliveries": Delivery.objects.filter(processed_at__isnull=True),
            "unfinished runs": Run.objects.filter(chain__forge__slug__in=slugs).exclude(
                status__in=["success", "failed", "canceled", "skipped"]
            ),
            "mirrors due": Chain.objects.filter(forge__slug__in=slugs).filter(
                mirror_requested_at__isnull=False
            ),
            "mirrors running": Chain.objects.filter(forge__slug__in=slugs).filter(
                mirror_lease_until__isnull=False
            ),
        }
        return [name for name, query in checks.items() if query.exists()]

    def run(self, sandbox: Any, sandbox_url: str, tokens: dict[str, str]) -> None:
        args = self.args
        window = args.minutes * 60.0
        events: list[tuple[float, str, Callable[[], None]]] = []
        for n in range(args.changes):
            at = n * CHANGE_EVERY
            for prefix in ("wh", "lost"):
                for forge in ("github", "gitlab"):
                    events.append(
                        (
                            at,
                            f"{prefix} {forge} change {n}",
                            functools.partial(open_change, sandbox, forge, prefix, n),
                        )
                    )
            for key in SCRIPTS:
                events.append(
                    (
                        at,
                        f"ptrig/{key} #{n}",
                        functools.partial(
                            self.start_ptrig, sandbox_url, key, tokens[f"ptrig/{key}"]
                        ),
                    )
                )
                events.append(
                    (at, f"taw/{key} #{n}", functools.partial(self.start_taw, sandbox_url, key))
                )
        if args.fanout:
            events.append(
                (args.fanout_at, "fan-out PR", functools.partial(self.open_fanout, sandbox))
            )
        events.sort(key=lambda e: e[0])
        last_event = max(e[0] for e in events)
        if (
            last_event + max(s["created"] + s["pending"] + s["running"] for s in SCRIPTS.values())
            > window
        ):
            self.warnings.append("the last changes' runs end after the simulated window")

        start = time.monotonic()
        self.timeline["start"] = time.time()
        print(
            f"… simulating {args.minutes:g} min at x{self.scale:g}: {self.sim(window):.0f} s real"
            f" ({len(events)} events)",
            flush=True,
        )
        pending = list(events)
        next_report = 0.0
        slugs = [s for s in FORGES if s != "gh-fan"]
        while True:
            now = time.monotonic() - start
            while pending and self.sim(pending[0][0]) <= now:
                _, label, action = pending.pop(0)
                try:
                    action()
                except Exception as exc:
                    self.warnings.append(f"{label}: {type(exc).__name__}: {exc}")
            if now >= next_report:
                runs = self.baton_runs(slugs)
                print(
                    f"  t={now * self.scale:5.0f} s simulated ({now:5.1f} s real): Baton runs"
                    f" {runs}; clients done {sum(1 for r, _ in self.clients if r.finished)}"
                    f"/{len(self.clients)}",
                    flush=True,
                )
                next_report = now + 15.0
            if now >= self.sim(window) and not pending:
                break
            time.sleep(0.05)
        self.timeline["window_end"] = time.time()

        # Past the window: let the last runs finish (the polling fallback sees a run's end up to
        # BATON_POLL_AFTER late) and Baton mirror them, within a bound.
        grace = self.sim(args.grace)
        print(f"… waiting up to {grace:.0f} s real for the last runs and mirrors", flush=True)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            clients_done = all(not t.is_alive() for _, t in self.clients)
            if clients_done and not self.baton_busy(slugs):
                break
            time.sleep(0.25)
        else:
            self.warnings.append(
                f"still busy {grace:.0f} s after the window: {self.baton_busy(slugs)};"
                f" clients running {sum(t.is_alive() for _, t in self.clients)}"
            )
        self.timeline["settled"] = time.time()
        if args.fanout:
            self.wait_fanout(sandbox)
        self.stop.set()
        for _, thread in self.clients:
            thread.join(5)

    def start_ptrig(self, sandbox_url: str, key: str, token: str) -> None:
        run = ClientRun("pipeline-trigger", f"ptrig/{key}")
        thread = run_client(
            pipeline_trigger,
            run,
            sandbox_url,
            f"ptrig/{key}",
            token,
            self.sim(PTRIG_SLEEP),
            self.stop,
        )
        self.clients.append((run, thread))

    def start_taw(self, sandbox_url: str, key: str) -> None:
        run = ClientRun("trigger-and-wait", f"taw/{key}")
        thread = run_client(
            trigger_and_wait, run, sandbox_url, f"taw/{key}", self.sim(TAW_INTERVAL), self.stop
        )
        self.clients.append((run, thread))

    def open_fanout(self, sandbox: Any) -> None:
        self.timeline["fan_pr"] = time.time()
        open_change(sandbox, "github", "fan", 0)

    def fan_dispatches(self, sandbox: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in sandbox.requests(method="POST")
            if r["path"].startswith("/api/v3/repos/fan/t")
            and r["path"].endswith("/dispatches")
            and r["status"] in (200, 204)
        ]

    def wait_fanout(self, sandbox: Any) -> None:
        n = self.args.fanout
        # The floor is (n - 1) s from the first dispatch; allow twice that, bounded.
        opened = self.timeline.get("fan_pr", time.time())
        deadline = time.monotonic() + max(10.0, opened + 2 * n * WRITE_SPACING + 60 - time.time())
        while time.monotonic() < deadline:
            if len(self.fan_dispatches(sandbox)) >= n:
                break
            time.sleep(0.5)
        else:
            self.warnings.append(
                f"fan-out: only {len(self.fan_dispatches(sandbox))} of {n} dispatches seen"
            )
        # Then watch the mirror writes that were held back behind the dispatches, for a while.
        dispatched = [r["time"] for r in self.fan_dispatches(sandbox)]
        if dispatched:
            end = max(dispatched) + min(max(self.args.fanout_tail, 0.0), 300.0)
            while time.time() < end:
                time.sleep(0.5)
        self.timeline["fan_end"] = time.time()
        self.fan_owed = self.owed_mirror_writes("gh-fan")

    def owed_mirror_writes(self, slug: str) -> int:
        """Commit statuses Baton still has to post for the runs of the forge's chains."""
        from bots.engine.mirroring import view_of
        from chains.models import Run

        runs = Run.objects.filter(chain__forge__slug=slug)
        return sum(1 for run in runs if view_of(run) != run.mirrored_status)


def fanout_figures(calls: list[Call], n: int, timeline: dict[str, float]) -> dict[str, Any]:
    fan = [c for c in calls if c.scenario == "fan"]
    dispatches = sorted(
        c.record["time"]
        for c in fan
        if c.method == "POST"
        and c.rest.endswith("/dispatches")
        and c.record["status"] in (200, 204)
    )
    out: dict[str, Any] = {"dispatches": len(dispatches), "targets": n}
    if len(dispatches) < 2:
        return out
    first, last = dispatches[0], dispatches[-1]
    gaps = [b - a for a, b in itertools.pairwise(dispatches)]
    inside = [c for c in fan if first <= c.record["time"] <= last]
    writes = Counter(classify(c)[1] for c in inside if c.write)
    after = [c for c in fan if c.record["time"] > last and c.write]
    statuses_after = [c for c in after if classify(c)[0] == "mirror"]
    watched = timeline.get("fan_end", last) - last
    first_mirror = min((c.record["time"] for c in fan if classify(c)[0] == "mirror"), default=None)
    out.update(
        wall=last - first,
        floor=(len(dispatches) - 1) * WRITE_SPACING,
        pr_to_first=first - timeline.get("fan_pr", first),
        gap_min=min(gaps),
        gap_p50=statistics.median(gaps),
        gap_max=max(gaps),
        gaps_short=sum(1 for g in gaps if g < 0.95 * WRITE_SPACING),
        writes_in_window=dict(writes),
        reads_in_window=sum(1 for c in inside if not c.write),
        mirror_writes_after=len(statuses_after),
        watched_after=watched,
        first_mirror_after_last_dispatch=(first_mirror - last) if first_mirror else None,
        refused=sum(
            1
            for c in fan
            if c.method == "POST"
            and c.rest.endswith("/dispatches")
            and c.record["status"] not in (200, 204)
        ),
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=5.0, help="sandbox time scale (and Baton's clocks)"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes")
    parser.add_argument(
        "--changes",
        type=int,
        default=5,
        help=f"changes per side, one every {CHANGE_EVERY:.0f} simulated s (each: 2 runs per forge)",
    )
    parser.add_argument("--fanout", type=int, default=100, help="fan-out targets (0: skip)")
    parser.add_argument(
        "--fanout-at",
        type=float,
        default=0.0,
        help="simulated second at which the fan-out PR opens (default: with the first changes)",
    )
    parser.add_argument(
        "--fanout-tail",
        type=float,
        default=20.0,
        help="real seconds to keep watching after the last dispatch (held-back mirror writes;"
        " at most 300)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=240.0,
        help="simulated seconds after the window for the last runs and mirrors",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="Celery worker threads")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--pg", default=common.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--db", default="baton_bench_api_calls", help="database to (re)create")
    parser.add_argument("--redis", default=common.DEFAULT_REDIS, help="Redis URL incl. db number")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--serve-sandbox", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: does the scenario still run?"
    )
    args = parser.parse_args()
    if args.serve_sandbox:
        serve_sandbox(args.serve_sandbox, args.scale)
        return 0
    if args.smoke:
        # x10 is as fast as Baton's clocks go (BATON_SWEEP_INTERVAL >= 0.5 s real).
        args.scale, args.minutes, args.changes, args.grace = 10.0, 1.0, 1, 600.0
        args.fanout, args.fanout_tail, args.concurrency, args.workers = 3, 2.0, 8, 2
        SCRIPTS.update(SMOKE_SCRIPTS)
        FAN_SCRIPT.update(SMOKE_SCRIPTS["fast"])
        if args.db == "baton_bench_api_calls":
            args.db = common.smoke_db(args.db)
    if not 1 <= args.scale <= 50 or not 1 <= args.minutes <= 60:
        parser.error("--scale must be 1..50 and --minutes 1..60")
    if not 1 <= args.changes <= 50 or not 0 <= args.fanout <= 300:
        parser.error("--changes must be 1..50 and --fanout 0..300")
    args.grace = min(max(args.grace, 0.0), 1800.0)

    cores = os.cpu_count() or 1
    clocks = {k: f"{v / args.scale:g}" for k, v in BATON_CLOCKS.items()}
    print(
        f"Baton forge API calls per run: {cores} cores, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(common.describe_tree() + ("; SMOKE sizes" if args.smoke else ""))
    print(
        f"{args.minutes:g} simulated min at x{args.scale:g}; {args.changes} changes per side;"
        f" Baton clocks (real s): " + ", ".join(f"{k}={v}" for k, v in clocks.items())
    )
    db_url = common.recreate_database(args.pg, args.db)
    common.flush_redis(args.redis)
    env = common.base_env(db_url, args.redis)
    common.setup_django(env)

    from sandbox.client import SandboxClient

    bench = Bench(args)
    records: list[dict[str, Any]] = []
    ids: dict[int, str] = {}
    busy_before = common.machine_ticks()
    load_before = os.getloadavg()
    runs_by_slug: dict[str, dict[str, int]] = {}
    changes_by_slug: dict[str, int] = {}
    open_by_slug: dict[str, OpenTime] = {}
    try:
        with common.Children() as children:
            print(f"logs: {children.log_dir}")
            sandbox_port, baton_port = common.free_port(), common.free_port()
            sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            children.start(
                "sandbox",
                [
                    common.PYTHON,
                    str(Path(__file__).resolve()),
                    "--serve-sandbox",
                    str(sandbox_port),
                    "--scale",
                    str(args.scale),
                ],
                env,
            )
            common.wait_http(f"{sandbox_url}/_sandbox", 60, children, "sandbox")
            sandbox = SandboxClient(sandbox_url, timeout=30)
            baton_url = f"http://127.0.0.1:{baton_port}"
            worker_env = {**env, "BATON_BASE_URL": baton_url, **clocks}
            with common.timed("set-up (gunicorn, worker, forges, repositories)"):
                common.start_gunicorn(children, baton_port, args.workers, worker_env)
                tokens = set_up(sandbox, sandbox_url, baton_url, args.fanout)
                sandbox.clear_requests()
                common.start_worker(children, args.concurrency, worker_env)
            bench.run(sandbox, sandbox_url, tokens)
            records = sandbox.requests()
            ids = {int(p["id"]): p["path_with_namespace"] for p in sandbox.projects()}
            dump = children.log_dir / "requests.json"
            dump.write_text(json.dumps({"timeline": bench.timeline, "requests": records}))
            print(f"request log: {dump} ({len(records)} calls)")
            from django.db.models import Count

            from chains.models import Chain, Run

            for slug in FORGES:
                runs_by_slug[slug] = dict(
                    Counter(
                        Run.objects.filter(chain__forge__slug=slug).values_list("status", flat=True)
                    )
                )
                changes_by_slug[slug] = Chain.objects.filter(forge__slug=slug).aggregate(
                    n=Count("change_number", distinct=True)
                )["n"]
                open_by_slug[slug] = open_time(
                    Run.objects.filter(chain__forge__slug=slug).values_list(
                        "repository__path", "triggered_at", "finished_at"
                    )
                )
            children.check("worker")
    finally:
        bench.stop.set()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            common.drop_database(args.pg, args.db)
        common.flush_redis(args.redis)

    busy_after = common.machine_ticks()
    busy = (busy_after[0] - busy_before[0]) / max(1e-9, busy_after[1] - busy_before[1])
    rows, fan = report(args, bench, records, ids, runs_by_slug, changes_by_slug, busy, load_before)
    f6_report(args, rows, open_by_slug)
    return scenario_checks(args, bench, rows, fan, runs_by_slug).exit_code()


@dataclass
class OpenTime:
    """Real seconds Baton's runs were open: summed over runs, and per repository the union of
    its runs' open spans (the time the repository had something to poll)."""

    run_seconds: float = 0.0
    repository_seconds: dict[str, float] = field(default_factory=dict)


def open_time(rows: Any) -> OpenTime:
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    out = OpenTime()
    for path, triggered, finished in rows:
        if triggered is None or finished is None:
            continue
        start, end = triggered.timestamp(), finished.timestamp()
        out.run_seconds += max(0.0, end - start)
        spans[path].append((start, end))
    for path, items in spans.items():
        total, reach = 0.0, float("-inf")
        for start, end in sorted(items):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        out.repository_seconds[path] = total
    return out


def f6_report(args: argparse.Namespace, rows: list[Row], open_by_slug: dict[str, OpenTime]) -> None:
    """F6: the webhooks-lost rows' track calls per run-hour and per repository poll interval."""
    interval = BATON_CLOCKS["BATON_POLL_AFTER"] / args.scale  # real seconds
    print()
    print(
        "F6 polling when webhooks are lost (simulated hours; a poll interval is"
        f" BATON_POLL_AFTER = {BATON_CLOCKS['BATON_POLL_AFTER']:g} s):"
    )
    for row, slug in zip(rows[2:4], ("gh-lost", "gl-lost"), strict=True):
        spent = open_by_slug.get(slug, OpenTime())
        run_hours = spent.run_seconds * args.scale / 3600
        intervals = sum(max(1.0, t / interval) for t in spent.repository_seconds.values())
        per_interval = row.lists / intervals if intervals else float("nan")
        per_run_hour = row.polls / run_hours if run_hours else float("nan")
        met = row.reads == 0 and per_interval <= GOAL_F6_LISTS_PER_INTERVAL
        extra = (
            f"; {row.polls_304} of {row.polls} answered 304 (not counted by GitHub)"
            if row.forge == "github"
            else ""
        )
        print(
            f"  {row.forge}: {row.polls} track calls for {row.runs} runs open {run_hours:.2f}"
            f" run-hours in {len(spent.repository_seconds)} repositories"
            f" ({intervals:.1f} repository poll intervals): {per_run_hour:.1f} calls per"
            f" run-hour; {row.lists} list calls ({per_interval:.2f} per repository interval),"
            f" {row.reads} per-run reads{extra}"
        )
        print(
            f"F6 [{row.forge}] one conditional list call per repository per interval, not one per"
            f" run: {per_interval:.2f} list calls per repository interval (goal <="
            f" {GOAL_F6_LISTS_PER_INTERVAL:g}), {row.reads} per-run reads (goal 0),"
            f" {per_run_hour:.1f} calls per run-hour -> {'MET' if met else 'MISSED'}"
        )


def scenario_checks(
    args: argparse.Namespace,
    bench: Bench,
    rows: list[Row],
    fan: dict[str, Any],
    runs_by_slug: dict[str, dict[str, int]],
) -> common.Checks:
    """Every run (Baton's and the clients') got to its end, the runs whose webhooks were lost
    were found by polling, and every fan-out target was dispatched once."""
    check = common.Checks()
    for slug in ("gh-wh", "gl-wh", "gh-lost", "gl-lost"):
        statuses = runs_by_slug.get(slug, {})
        wanted = args.changes * len(SCRIPTS)
        check(
            statuses == {"success": wanted},
            f"Baton's runs on {slug}: {statuses}, wanted {wanted} successes",
        )
    for row in rows[2:4]:
        check(row.polls > 0, f"{row.label} [{row.forge}]: the polling fallback polled")
    for run, _ in bench.clients:
        check(
            run.status == "success" and not run.error,
            f"{run.pattern} on {run.project}: {run.status or run.error or 'unfinished'}",
        )
    check(bench.clients, "the client patterns ran")
    if args.fanout:
        dispatched = fan.get("dispatches", 0)
        check(dispatched == args.fanout, f"fan-out: {dispatched} of {args.fanout} dispatched")
        check(not fan.get("refused"), f"fan-out: {fan.get('refused')} dispatches refused")
    return check


def report(
    args: argparse.Namespace,
    bench: Bench,
    records: list[dict[str, Any]],
    ids: dict[int, str],
    runs_by_slug: dict[str, dict[str, int]],
    changes_by_slug: dict[str, int],
    busy: float,
    load_before: tuple[float, float, float],
) -> tuple[list[Row], dict[str, Any]]:
    """Prints the figures; returns the rows per scenario and the fan-out's figures."""
    calls = [parse(r, ids) for r in records]
    by: dict[tuple[str, str], list[Call]] = defaultdict(list)
    for call in calls:
        by[(call.scenario, call.forge)].append(call)
    clients: dict[str, list[ClientRun]] = defaultdict(list)
    for run, _ in bench.clients:
        clients[run.project.split("/", 1)[0]].append(run)

    rows: list[Row] = []
    for slug, label in (
        ("gh-wh", "Baton, webhooks"),
        ("gl-wh", "Baton, webhooks"),
        ("gh-lost", "Baton, webhooks lost (polling)"),
        ("gl-lost", "Baton, webhooks lost (polling)"),
    ):
        kind, prefix, _ = FORGES[slug]
        runs = sum(runs_by_slug.get(slug, {}).values())
        rows.append(tally(label, kind, by[(prefix, kind)], runs, changes_by_slug.get(slug, 0)))
    rows.append(
        tally(
            "pipeline-trigger (GET every 5 s)",
            "gitlab",
            by[("ptrig", "gitlab")],
            len(clients["ptrig"]),
            0,
        )
    )
    rows.append(
        tally(
            "trigger-and-wait (list, dispatch, list, GET every 10 s)",
            "github",
            by[("taw", "github")],
            len(clients["taw"]),
            0,
        )
    )

    print()
    print(
        f"API calls per run over {args.minutes:g} simulated minutes (x{args.scale:g}): trigger ="
        " default-branch read, workflow read, dispatch/create; config = the target's .baton.yml"
        " read (nested chains); track = polls and run lists"
    )
    table_rows = []
    for row in rows:
        track = row.groups["track"]
        trig = row.groups["trigger"]
        conf = row.groups["config"]
        polls = (
            f"{row.polls} ({row.polls_304 / row.polls:.0%} 304)"
            if row.forge == "github" and row.polls
            else str(row.polls)
        )
        table_rows.append(
            [
                row.label,
                row.forge,
                row.runs,
                f"{row.per_run:.2f}",
                f"{trig / row.runs:.2f}" if row.runs else "-",
                f"{conf / row.runs:.2f}" if row.runs else "-",
                f"{track / row.runs:.2f}" if row.runs else "-",
                f"{row.counted / row.runs:.2f}" if row.runs else "-",
                polls,
                f"{row.mirror_writes} ({row.mirror_writes / row.changes:.1f}/change)"
                if row.changes
                else "-",
                f"{row.groups['plan'] / row.changes:.1f}" if row.changes else "-",
            ]
        )
    print(
        common.table(
            [
                "",
                "forge",
                "runs",
                "calls/run",
                "trigger",
                "config",
                "track",
                "rate-limited/run",
                "polls",
                "mirror writes",
                "plan reads/change",
            ],
            table_rows,
        )
    )
    for row in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(row.kinds.items()))
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(row.errors.items()))
        print(
            f"  {row.label} [{row.forge}]: {kinds}"
            + (f"; answers >= 400: {errors}" if errors else "")
        )
    for slug, statuses in runs_by_slug.items():
        print(f"  Baton runs on {slug}: {statuses}")
    for prefix, client_runs in clients.items():
        outcome = Counter(r.status or r.error or "unfinished" for r in client_runs)
        print(f"  {prefix} client runs: {dict(outcome)}")
    other = [c for c in calls if not c.scenario]
    if other:
        print(f"  not tied to a repository: {dict(Counter(f'{c.method} {c.rest}' for c in other))}")

    fan = fanout_figures(calls, args.fanout, bench.timeline) if args.fanout else {}
    if fan.get("wall") is not None:
        print()
        print(
            f"fan-out of {fan['targets']} GitHub workflow dispatches (own token): first -> last"
            f" dispatch {fan['wall']:.1f} s, floor {fan['floor']:.0f} s at {WRITE_SPACING:g} s per"
            f" write; PR opened -> first dispatch {fan['pr_to_first']:.1f} s"
        )
        print(
            f"  gaps between dispatches: min {fan['gap_min']:.2f} s, p50 {fan['gap_p50']:.2f} s,"
            f" max {fan['gap_max']:.2f} s; {fan['gaps_short']} of {fan['dispatches'] - 1} under"
            f" {0.95 * WRITE_SPACING:.2f} s; refused dispatches: {fan['refused']}"
        )
        print(
            f"  writes in the window: {fan['writes_in_window']}; reads in the window:"
            f" {fan['reads_in_window']}"
        )
        print(
            f"  mirror writes in the {fan['watched_after']:.0f} s after the last dispatch:"
            f" {fan['mirror_writes_after']}"
            + (
                f", the first {fan['first_mirror_after_last_dispatch']:.1f} s after it"
                if fan["first_mirror_after_last_dispatch"] is not None
                else ""
            )
            + f"; commit statuses still owed then: {bench.fan_owed}"
        )

    print()
    load_after = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, {busy:.0%} busy during the run, load average"
        f" {load_before[0]:.2f} -> {load_after[0]:.2f} (sandbox, gunicorn, worker, PostgreSQL,"
        " Redis, the clients and whatever else runs there)"
    )
    for row in rows[:2]:
        ok = row.per_run <= GOAL_CALLS_PER_RUN
        print(
            f"goal: <= {GOAL_CALLS_PER_RUN:g} calls per run with webhooks ({row.forge}):"
            f" {row.per_run:.2f} (without the .baton.yml reads"
            f" {(row.per_run - row.groups['config'] / row.runs) if row.runs else float('nan'):.2f})"
            f" -> {'MET' if ok else 'MISSED'}"
        )
    gh_lost = rows[2]
    share = gh_lost.polls_304 / gh_lost.polls if gh_lost.polls else float("nan")
    print(
        f"goal: >= {GOAL_304_SHARE:.0%} of fallback polls answered 304 (GitHub): {share:.0%}"
        f" ({gh_lost.polls_304} of {gh_lost.polls}) -> "
        + ("MET" if share >= GOAL_304_SHARE else "MISSED")
    )
    if fan.get("wall") is not None:
        over = fan["wall"] / fan["floor"] - 1
        complete = fan["dispatches"] == fan["targets"]
        print(
            f"goal: fan-out within {GOAL_FANOUT_OVER_FLOOR:.0%} of the floor: {fan['wall']:.1f} s"
            f" vs {fan['floor']:.0f} s ({over:+.1%})"
            + ("" if complete else f", only {fan['dispatches']} of {fan['targets']} dispatched")
            + " -> "
            + ("MET" if over <= GOAL_FANOUT_OVER_FLOOR and complete else "MISSED")
        )
    for note in bench.warnings:
        print(f"warning: {note}")
    return rows, fan


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; child processes stopped, database dropped", file=sys.stderr)
        sys.exit(130)
