"""Shared plumbing for the benchmarks: a throw-away PostgreSQL database and Redis db, child
processes (gunicorn, Celery, the sandbox) that always die with the benchmark, and small stats.

Everything here talks to loopback only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

BENCH_SECRET_KEY = "baton-bench-only-secret-key-not-for-production-0123456789"
BENCH_REDIS_DB = 13  # the benchmarks' own Redis db: flushed before and after each run


def _default_pg() -> str:
    """The PostgreSQL server: $BENCH_PG, else the server of $DATABASE_URL (as CI sets it), else
    the local one. The benchmarks create and drop their own databases there."""
    if os.environ.get("BENCH_PG"):
        return os.environ["BENCH_PG"]
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme in ("postgres", "postgresql", "pgsql") and parts.netloc:
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return "postgres://postgres@127.0.0.1:5432"


def _default_redis() -> str:
    """Redis: $BENCH_REDIS, else db 13 of the server of $CELERY_BROKER_URL, else the local one."""
    if os.environ.get("BENCH_REDIS"):
        return os.environ["BENCH_REDIS"]
    parts = urlsplit(os.environ.get("CELERY_BROKER_URL", ""))
    if parts.scheme in ("redis", "rediss") and parts.netloc:
        return urlunsplit((parts.scheme, parts.netloc, f"/{BENCH_REDIS_DB}", "", ""))
    return f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}"


DEFAULT_PG = _default_pg()
DEFAULT_REDIS = _default_redis()


# --- environment --------------------------------------------------------------------------------


def database_url(pg: str, name: str) -> str:
    parts = urlsplit(pg)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def recreate_database(pg: str, name: str) -> str:
    """Drop and create database ``name`` on the server ``pg``; returns its URL."""
    import psycopg
    from psycopg import sql

    admin = database_url(pg, "postgres").replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(pg, name)


def drop_database(pg: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    admin = database_url(pg, "postgres").replace("postgres://", "postgresql://", 1)
    with contextlib.suppress(Exception), psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def setup_django(env: dict[str, str], *, migrate: bool = True) -> None:
    """Point this process at the benchmark database and broker, set Django up, migrate."""
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def base_env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": redis_url,
        "SECRET_KEY": BENCH_SECRET_KEY,
        "DEBUG": "false",
        # Plain http on loopback: no TLS proxy in front, so no https redirect or Secure cookies.
        "BATON_HTTPS": "false",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- child processes ----------------------------------------------------------------------------


class Children:
    """Child processes, each in its own process group, stopped (TERM, then KILL) on exit.

    Use as a context manager; SIGTERM/SIGHUP to the benchmark become SystemExit so that the
    ``finally`` runs, and Ctrl-C (KeyboardInterrupt) does the same.
    """

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="baton-bench-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def __enter__(self) -> Children:
        def stop(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, stop)
        # Ctrl-C -> KeyboardInterrupt, even when started from a shell that ignores SIGINT.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return self

    def __exit__(self, *exc: object) -> None:
        # No second interruption while children are being stopped.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGINT, old)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = proc
        self._logs[name] = log
        return proc

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def stop(self, name: str, grace: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc is not None:
            # Threads or grandchildren left in the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def check(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            tail = self.log_path(name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} is not running; its log ends with:\n{tail}")


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float, children: Children, name: str) -> None:
    session = requests.Session()
    session.trust_env = False

    def up() -> bool:
        children.check(name)
        try:
            return session.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_for(up, timeout, f"{name} at {url}", interval=0.1)


def start_gunicorn(
    children: Children,
    port: int,
    workers: int,
    env: dict[str, str],
    *,
    name: str = "gunicorn",
    extra: Sequence[str] = (),
) -> str:
    url = f"http://127.0.0.1:{port}"
    children.start(
        name,
        [
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--chdir",
            str(ROOT),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            *extra,
        ],
        env,
    )
    wait_http(f"{url}/healthz", 90, children, name)
    return url


def start_worker(
    children: Children,
    concurrency: int,
    env: dict[str, str],
    *,
    name: str = "worker",
    beat: bool = True,
    profile: str | None = None,
) -> None:
    """A `celery worker -P threads`; ``beat``: with the scheduler (one per deployment);
    ``profile``: a pstats file the worker writes at exit, all threads (bench/profiled_worker.py)."""
    schedule = ["-B", "-s", str(children.log_dir / f"{name}-beat-schedule")] if beat else []
    runner = ["bench.profiled_worker", profile] if profile else ["celery"]
    children.start(
        name,
        [
            PYTHON,
            "-m",
            *runner,
            "-A",
            "config",
            "worker",
            "-n",
            f"{name}@%h",
            *schedule,
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        # INFO, as `-l` says: the worker's " ready." line is how the bench knows it has started.
        {**env, "LOG_LEVEL": "INFO"},
    )
    log = children.log_path(name)

    def ready() -> bool:
        children.check(name)
        return " ready." in log.read_text(errors="replace")

    wait_for(ready, 60, f"the Celery worker ({name})", interval=0.1)


# --- the usual set-up -------------------------------------------------------------------------


class Stack:
    """What a benchmark runs against: its own database and Redis db, Django set up on them in
    this process, the sandbox forge in a child process, and Baton's address (gunicorn and the
    worker are started by the benchmark, which chooses their sizes)."""

    def __init__(self, children: Children, env: dict[str, str], sandbox: Any, sandbox_url: str):
        self.children = children
        self.env = env
        self.sandbox = sandbox
        self.sandbox_url = sandbox_url
        self.baton_port = free_port()
        self.baton_url = f"http://127.0.0.1:{self.baton_port}"
        # Baton's processes, which build links and hook URLs from the address they are served at.
        self.worker_env = {**env, "BATON_BASE_URL": self.baton_url}

    def hook_url(self, slug: str) -> str:
        return f"{self.baton_url}/hooks/{slug}/"

    def start_gunicorn(self, workers: int, extra: Sequence[str] = ()) -> str:
        return start_gunicorn(self.children, self.baton_port, workers, self.worker_env, extra=extra)

    def start_worker(self, concurrency: int, **options: Any) -> None:
        start_worker(self.children, concurrency, self.worker_env, **options)


@contextlib.contextmanager
def stack(
    args: Any,
    *,
    env: dict[str, str] | None = None,
    sandbox: Sequence[str] = ("--nodelay",),
    sandbox_timeout: float = 30.0,
    keep_db: bool = False,
) -> Iterator[Stack]:
    """Set a benchmark up and always tear it down: database ``args.db`` (re)created on the
    server ``args.pg`` and dropped at the end (unless ``keep_db``), Redis ``args.redis`` flushed
    before and after, Django on both, and the sandbox (bench/sandbox_server.py with the options
    ``sandbox``) on a free port. ``env``: more variables for this process and Baton's."""
    db_url = recreate_database(args.pg, args.db)
    try:
        flush_redis(args.redis)
        base = base_env(db_url, args.redis, **(env or {}))
        setup_django(base)
        from sandbox.client import SandboxClient

        with Children() as children:
            print(f"logs: {children.log_dir}")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            children.start(
                "sandbox", [PYTHON, "-m", "bench.sandbox_server", str(port), *sandbox], base
            )
            wait_http(f"{url}/_sandbox", 60, children, "sandbox")
            yield Stack(children, base, SandboxClient(url, timeout=sandbox_timeout), url)
    finally:
        from django.db import connections

        connections.close_all()
        if not keep_db:
            drop_database(args.pg, args.db)
        flush_redis(args.redis)


def sandbox_forge(
    api_url: str, hook_secret: str, actions: Sequence[str], slug: str = "sandbox"
) -> Any:
    """The sandbox as a GitLab forge of Baton's, and alice, who opens the sandbox's merge requests,
    linked to it with a grant of ``actions`` on every project. Returns her user."""
    from django.contrib.auth import get_user_model

    from chains.models import Forge, Grant, Identity

    forge = Forge.objects.create(
        kind="gitlab",
        slug=slug,
        name="Sandbox GitLab",
        api_url=api_url,
        token="bench-token",
        webhook_secret=hook_secret,
    )
    alice = get_user_model().objects.create_user("alice", "alice@example.com")
    Grant.objects.create(user=alice, projects="*", actions=list(actions))
    Identity.objects.create(forge=forge, username="alice", user=alice)
    return alice


# --- smoke mode and scenario checks ---------------------------------------------------------


def smoke_db(name: str) -> str:
    """A database name of its own per smoke run, so that two runs on one server never drop each
    other's database."""
    return f"{name}_smoke_{os.getpid()}"


class Checks:
    """What must hold for a benchmark's scenario to have run at all (every request answered,
    every run triggered once, every page showing what it should). Not the performance goals:
    those are figures, printed MET or MISSED. ``exit_code()`` is 1 when a check failed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def __call__(self, ok: object, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        return bool(ok)

    def exit_code(self) -> int:
        print()
        if self.failed:
            print(f"scenario BROKEN: {len(self.failed)} of {self.passed + len(self.failed)} checks")
            for what in self.failed:
                print(f"  failed: {what}")
            return 1
        print(f"scenario: all {self.passed} checks passed")
        return 0


# --- stats --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    start = time.monotonic()
    print(f"… {label}", flush=True)
    yield
    print(f"  done in {time.monotonic() - start:.1f}s", flush=True)


# --- CPU accounting -----------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


_PG_SHARED = ("walwriter", "checkpointer", "background writer")  # work for every database


def _postgres_of(pid: str, database: str | None) -> bool:
    """Whether a ``postgres`` process works for ``database`` (None: any): a backend connected
    to it, or one of the server's shared writers. Other engineers' backends are left out."""
    if database is None:
        return True
    try:
        title = Path("/proc", pid, "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return f" {database} " in title or title.strip().removeprefix("postgres: ") in _PG_SHARED


def cpu_by_group(groups: dict[str, int], *, database: str | None = None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by live processes, summed per group.

    ``groups`` maps a label to a process-group id (our children); processes named ``postgres``
    and ``redis-server`` are counted as "postgres" and "redis", this process as "client".
    With ``database``, only the PostgreSQL backends connected to it (and the server's shared
    writers) are counted. Other processes on the machine (and exited ones) are not counted.
    """
    by_pgid = {pgid: label for label, pgid in groups.items()}
    totals: dict[str, float] = dict.fromkeys([*groups, "postgres", "redis", "client"], 0.0)
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        pgid, used = int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK
        if int(entry.name) == me:
            label = "client"
        elif pgid in by_pgid:
            label = by_pgid[pgid]
        elif comm == "postgres" and _postgres_of(entry.name, database):
            label = "postgres"
        elif comm.startswith("redis-server"):
            label = "redis"
        else:
            continue
        totals[label] += used
    return totals


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: max(0.0, after.get(k, 0.0) - v) for k, v in before.items()}


def machine_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / _TICK, total / _TICK


def describe_tree() -> str:
    """Which code is measured: the commit, and whether the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "code: (not a git checkout)"
    return f"code: {head or '?'}" + (" + uncommitted changes" if dirty else "")
