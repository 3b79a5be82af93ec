"""Dashboard render times on a large database: 10,000 chains and 100,000 runs on PostgreSQL.

Measures, in process through Django's WSGI handler (every middleware, sessions in the database,
templates cached as in production, DEBUG off), the p50/p95 time and the SQL query count of:
the chain list (plain and filtered), a chain's page, the release matrix, a repository's page,
the downstream health page, and an unchanged poll of each live part (204).

    .venv/bin/python bench/dashboard.py [--chains 10000] [--runs-per-chain 10] [--repeat 200]
    .venv/bin/python bench/dashboard.py --smoke   # 200 chains, 5 requests each: seconds (CI)

Creates (and drops at the end, unless --keep) the PostgreSQL database `baton_bench_dash`.
Exits 1 when the scenario breaks (a page not answering 200, a poll not 204, a page not showing
what the reader may view), never for a missed goal.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

DB_NAME = "baton_bench_dash"
GOAL_RENDER = 0.100  # seconds, p95
GOAL_POLL = 0.005  # seconds, p95
GOAL_POLL_QUERIES = 2
STATUSES = ["success"] * 70 + ["failed"] * 10 + ["canceled"] * 5 + ["running"] * 10 + ["queued"] * 5


def seed(chains: int, runs_per_chain: int) -> dict[str, Any]:
    """Bulk-create the data set; returns handles for the measured pages."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from chains.models import Chain, Forge, Grant, Repository, Run, RunAttempt, Team

    rng = random.Random(7)
    gitlab = Forge.objects.create(
        kind="gitlab",
        slug="gitlab",
        name="GitLab",
        api_url="https://gitlab.example.com",
        token="t",
        webhook_secret="s",
    )
    github = Forge.objects.create(
        kind="github",
        slug="github",
        name="GitHub",
        api_url="https://github.example.com",
        token="t",
        webhook_secret="s",
    )
    repos = Repository.objects.bulk_create(
        Repository(
            forge=gitlab if i % 4 else github,
            path=f"acme/project-{i:03d}",
            web_url=f"https://example.com/acme/project-{i:03d}",
            default_branch="main",
        )
        for i in range(200)
    )
    products, targets = repos[:25], repos[25:65]
    refs = [f"release/1.{i}" for i in range(10)]
    now = timezone.now()
    chain_objs = []
    for i in range(chains):
        release = i % 10 == 0
        repo = rng.choice(products) if release else rng.choice(repos)
        status = rng.choice(STATUSES)
        chain_objs.append(
            Chain(
                forge_id=repo.forge_id,
                repository=repo,
                change_number=1 + i // 3,
                change_url=f"{repo.web_url}/-/merge_requests/{1 + i // 3}",
                title=f"Change {i}: {rng.choice(['fix', 'add', 'bump', 'refactor'])} things",
                author=rng.choice(["alice", "bob", "maria", "li", "sam"]),
                source_branch=f"feature/{i}",
                target_branch=rng.choice(refs) if release else "main",
                head_sha=f"{i:08x}" + "0" * 32,
                upstream_ref=f"refs/merge-requests/{1 + i // 3}/head",
                reason="merge request opened",
                status=status,
                error="" if i % 500 else ".baton.yml line 3: downstream[0].strategy: bad value",
            )
        )
    with common.timed(f"{chains} chains"):
        created = Chain.objects.bulk_create(chain_objs, batch_size=2000)
    run_objs = []
    for chain in created:
        for j in range(runs_per_chain):
            status = chain.status if j == 0 else rng.choice(STATUSES)
            started = now - timedelta(minutes=rng.randint(1, 600))
            finished = status in ("success", "failed", "canceled")
            run_objs.append(
                Run(
                    chain=chain,
                    depth=1,
                    key=f"t{j}",
                    label=f"Target {j}",
                    repository=rng.choice(targets),
                    ref=chain.target_branch,
                    variables={"UPSTREAM_REF": chain.upstream_ref, "RELEASE_STREAM": "stable"},
                    masked_variables={"DEPLOY_TOKEN": "secret"} if j == 0 else {},
                    status=status,
                    attempt=2 if j == 1 and status == "failed" else 1,
                    remote_id=str(100000 + chain.pk * 10 + j),
                    web_url=f"https://example.com/p/{chain.pk * 10 + j}",
                    error="pipeline failed: job test exited 1" if status == "failed" else "",
                    dispatch="sent",
                    triggered_at=started,
                    started_at=started,
                    finished_at=started + timedelta(seconds=rng.randint(30, 900))
                    if finished
                    else None,
                )
            )
    with common.timed(f"{len(run_objs)} runs"):
        runs = Run.objects.bulk_create(run_objs, batch_size=5000)
    # A tree: the last two runs of each chain hang under its first two.
    with common.timed("tree, attempts, ages"), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chains_run r SET parent_id = p.id, depth = 2 FROM chains_run p "
            "WHERE p.chain_id = r.chain_id AND p.key = 't0' AND r.key IN (%s, %s)",
            [f"t{runs_per_chain - 1}", f"t{runs_per_chain - 2}"],
        )
        cursor.execute(
            "UPDATE chains_chain SET created_at = now() - (id * interval '3 minutes'), "
            "finished_at = CASE WHEN status IN ('success','failed','canceled') "
            "THEN now() - (id * interval '3 minutes') + interval '20 minutes' END"
        )
        RunAttempt.objects.bulk_create(
            RunAttempt(run=run, number=1, status="failed", error="job lint exited 2")
            for run in runs
            if run.attempt == 2
        )
        # As autovacuum leaves the tables after a bulk insert (PostgreSQL 13 on vacuums tables
        # that only grow): statistics, and the visibility map index-only scans need.
        cursor.execute("VACUUM ANALYZE")
    # The reader is a release manager as the dashboard sees one: no superuser, no staff flag, a
    # member of a team whose grant lets it view every project of the group (the policy's path).
    user = User.objects.create_user("bench", password="bench-password")
    team = Team.objects.create(name="release managers")
    team.members.add(user)
    Grant.objects.create(team=team, projects="acme/*", actions=["view"])
    # The chain measured: the first live one from the middle on (a finished chain stops polling).
    live = [c for c in created[len(created) // 2 :] if c.status in ("running", "queued")]
    middle = live[0] if live else created[len(created) // 2]
    # The release measured: release/1.3, or at small sizes the first release with chains.
    used = {c.target_branch for c in created}
    ref = next((r for r in [refs[3], *refs] if r in used), refs[3])
    return {"user": user, "chain": middle, "repository": middle.repository, "ref": ref}


class Server:
    """Django's WSGI handler called directly, as gunicorn would: every middleware runs, nothing
    of the test client's instrumentation does."""

    def __init__(self, session_cookie: str) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.cookie = session_cookie

    def get(
        self, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        path, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_COOKIE": self.cookie,
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()},
        }
        answer: dict[str, Any] = {}

        def start_response(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            answer["status"] = int(status.split()[0])
            answer["headers"] = dict(response_headers)
            return lambda data: None

        response = self.handler(environ, start_response)
        body = b"".join(response)
        response.close()
        return answer["status"], answer["headers"], body


def measure(
    server: Server, url: str, repeat: int, *, headers: dict[str, str] | None = None
) -> tuple[float, float, int, int, float]:
    """(p50, p95, queries, status, CPU p50) of GET url. The CPU is this process's (Django, the
    templates, psycopg; not PostgreSQL's): on a shared machine it moves much less than the
    wall time, which counts the time other processes had the cores."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(5):
        server.get(url, headers)
    times, cpu = [], []
    for _ in range(repeat):
        start, used = time.perf_counter(), time.process_time()
        server.get(url, headers)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - used)
    with CaptureQueriesContext(connection) as queries:
        status, _, _ = server.get(url, headers)
    return (
        common.percentile(times, 50),
        common.percentile(times, 95),
        len(queries),
        status,
        common.percentile(cpu, 50),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=10_000)
    parser.add_argument("--runs-per-chain", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--pg", default=common.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--db", default=DB_NAME, help="database to (re)create")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: does the scenario still run?"
    )
    args = parser.parse_args()
    if args.smoke:
        args.chains, args.runs_per_chain, args.repeat = 200, 5, 5
        if args.db == DB_NAME:
            args.db = common.smoke_db(DB_NAME)
    if not 10 <= args.chains <= 1_000_000 or not 3 <= args.runs_per_chain <= 100:
        parser.error("--chains must be 10..1000000 and --runs-per-chain 3..100")
    args.repeat = min(max(args.repeat, 1), 10_000)

    db_url = common.recreate_database(args.pg, args.db)
    env = common.base_env(db_url, "memory://", ALLOWED_HOSTS="testserver,127.0.0.1")
    try:
        with common.timed("migrate"):
            common.setup_django(env)
        data = seed(args.chains, args.runs_per_chain)
        return report(data, args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            common.drop_database(args.pg, args.db)


def report(data: dict[str, Any], args: argparse.Namespace) -> int:
    from django.test import Client

    from chains.models import Chain, Run

    client = Client()
    client.force_login(data["user"])
    server = Server(f"sessionid={client.cookies['sessionid'].value}")
    chain, repo, ref = data["chain"], data["repository"], data["ref"]
    hx = {"HX-Request": "true"}
    check = common.Checks()

    def poll(url: str) -> str | None:
        """The URL the live part polls, with the cursor of what it shows (None: no live part)."""
        html = server.get(url, hx)[2].decode()
        found = re.search(r'hx-get="([^"]*since=[^"]*)"', html)
        if not check(found, f"{url} has a live part (a poll URL with since=)") or not found:
            return None
        return found.group(1).replace("&amp;", "&")

    def shows(url: str, *texts: str, hidden: str = "") -> None:
        """The reader sees the page with ``texts`` in it and without ``hidden``."""
        status, _, body = server.get(url)
        html = body.decode(errors="replace")
        check(status == 200, f"GET {url} answers 200 (got {status})")
        for text in texts:
            check(text in html, f"GET {url} shows {text!r}")
        if hidden:
            check(hidden not in html, f"GET {url} does not show {hidden!r}")

    chain_url = f"/chains/{chain.pk}/"
    release_url = f"/releases/?ref={ref}"
    runs = list(Run.objects.filter(chain=chain).select_related("repository"))
    # What a reader with a view grant on every project must see, before anything is timed.
    newest = Chain.objects.order_by("-created_at").first()
    shows("/", f'href="/chains/{newest.pk}/"' if newest else "")
    shows(chain_url, *{run.repository.path for run in runs}, hidden="you may not view")
    # The matrix shows each project's latest chain (the highest id) for the ref.
    released = Chain.objects.filter(target_branch=ref).order_by("-pk").first()
    if released:
        shows(release_url, f'href="/chains/{released.pk}/"')
    shows(f"/repositories/{repo.pk}/", repo.path)

    render_goal = lambda p95: p95 < GOAL_RENDER  # noqa: E731
    poll_goal = lambda p95: p95 < GOAL_POLL  # noqa: E731
    pages: list[tuple[str, str | None, dict[str, str], Callable[[float], bool]]] = [
        ("chain list", "/", {}, render_goal),
        ("chain list, filtered", "/?status=failed&q=fix&within=30d", {}, render_goal),
        ("chain list, page 200", "/?page=200", {}, render_goal),
        ("chain detail", chain_url, {}, render_goal),
        ("release matrix", release_url, {}, render_goal),
        ("repository", f"/repositories/{repo.pk}/", {}, render_goal),
        ("downstream health", "/health/", {}, render_goal),
        ("poll: chain, unchanged", poll(chain_url), hx, poll_goal),
        ("poll: list, unchanged", poll("/"), hx, poll_goal),
        ("poll: release, unchanged", poll(release_url), hx, poll_goal),
    ]
    print(
        f"\n{common.describe_tree()}; {args.chains} chains, "
        f"{args.chains * args.runs_per_chain} runs; chain {chain.pk} has {len(runs)} runs; "
        f"{args.repeat} requests each, in process" + ("; SMOKE sizes" if args.smoke else "") + "\n"
    )
    rows, missed = [], []
    busy0, total0 = common.machine_ticks()
    for name, url, headers, goal in pages:
        if url is None:
            continue
        p50, p95, queries, status, cpu = measure(server, url, args.repeat, headers=headers)
        is_poll = name.startswith("poll")
        check(status == (204 if is_poll else 200), f"{name}: GET {url} answers {status}")
        ok = goal(p95) and (not is_poll or queries <= GOAL_POLL_QUERIES)
        wanted = (
            f"< {common.ms(GOAL_POLL)}, ≤ 2 queries" if is_poll else f"< {common.ms(GOAL_RENDER)}"
        )
        rows.append(
            [
                name,
                status,
                common.ms(p50),
                common.ms(p95),
                common.ms(cpu),
                queries,
                wanted,
                "met" if ok else "MISSED",
            ]
        )
        if not ok:
            missed.append(name)
    busy1, total1 = common.machine_ticks()
    print(
        common.table(["page", "HTTP", "p50", "p95", "CPU p50", "queries", "goal (p95)", ""], rows)
    )
    share = 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)
    print(
        f"\nthe machine ({os.cpu_count()} cores) was {share:.0f}% busy meanwhile; this benchmark "
        "alone keeps about one core busy, so much more means other work skewed the figures"
    )
    print("\nall goals met" if not missed else f"\nmissed: {', '.join(missed)}")

    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
