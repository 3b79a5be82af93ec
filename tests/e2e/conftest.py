"""End-to-end harness: the sandbox forge on a free port, Baton served by pytest-django's live
server on PostgreSQL, and a real Celery worker (with its scheduler) on Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from kombu import Queue

from chains.models import Forge, Grant, Identity
from config.celery import app as celery_app
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
HOOK_SECRET = "e2e-hook-secret"

# Fast clocks for the engine so that recovery paths show within seconds.
WORKER_ENV = {
    "BATON_SWEEP_INTERVAL": "1",
    "BATON_STALE_AFTER": "2",
    "BATON_TRIGGER_LEASE": "6",  # longer than one send (BATON_FORGE_TIMEOUT)
    "BATON_LOOKUP_GRACE": "3",
    "BATON_POLL_AFTER": "3",
    "BATON_HOOK_SILENCE": "20",
    "BATON_FORGE_TIMEOUT": "4",
    # JSON lines carrying each chain's ids (tests/e2e/test_observability.py reads them).
    "LOG_FORMAT": "json",
}
QUEUES = [queue.name for queue in settings.CELERY_TASK_QUEUES]  # the worker reads them all
# How long a paused worker may take to finish the tasks it holds before it is killed instead
# (a test that ends with paced writes still queued, a GitHub fan-out, would hold it for a minute).
DRAIN_TIMEOUT = 15.0
# The worker's database sessions carry this name, so that those of a killed one can be ended.
WORKER_APPLICATION = "baton-e2e-worker"


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    from tests.e2e.test_gitlab_chain import describe_chains

    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or check}: {last!r}\n{describe_chains()}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Worker:
    """A real `celery worker -B` process, which tests may kill and start again.

    Between tests it is paused (see ``idle_worker``): it takes no task while the database is
    flushed, so none of its transactions can hold a lock the flush's TRUNCATE waits for."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.name = ""
        self.metrics_port = free_port()  # the worker answers Prometheus here itself
        self.clocks: dict[str, str] = {}  # a test's own engine clocks, over WORKER_ENV's

    def env(self) -> dict[str, str]:
        database: Any = settings.DATABASES["default"]
        url = (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}?application_name={WORKER_APPLICATION}"
        )
        return {
            **os.environ,
            **WORKER_ENV,
            **self.clocks,
            "DATABASE_URL": url,
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "BATON_WORKER_METRICS_PORT": str(self.metrics_port),
        }

    def start(self) -> None:
        self.starts += 1
        # A name of its own, so that control commands reach this worker and no other.
        self.name = f"e2e-{os.getpid()}-{self.starts}@{socket.gethostname()}"
        log = open(self.log_dir / f"worker-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-n",
                self.name,
                "-B",
                "-s",
                str(self.log_dir / "beat-schedule"),
                "-P",
                "threads",
                "-c",
                "8",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def restart(self, **clocks: str) -> None:
        """Stop the worker and start it again with ``clocks`` over WORKER_ENV's (none: the
        suite's own). Only between tests: ``idle_worker`` resumes it."""
        self.stop()
        self.clocks = clocks
        self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acks, nothing finished."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def answers(self, timeout: float) -> bool:
        """Wait until the worker answers a ping (it is up and takes control commands)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if celery_app.control.ping(destination=[self.name], timeout=1.0):
                return True
        return False

    def resume(self) -> None:
        """Take tasks again, starting from an empty queue: what is left there was sent for the
        previous test (periodic sweeps, late webhooks) and names rows that no longer exist."""
        if not self.answers(60):
            raise RuntimeError(f"the Celery worker does not answer:\n{self.log_tail()}")
        with celery_app.connection_for_write() as conn:
            for name in QUEUES:
                Queue(name).bind(conn.default_channel).purge()
        for name in QUEUES:
            replies = celery_app.control.add_consumer(
                name, destination=[self.name], reply=True, timeout=10
            )
            if not replies:
                raise RuntimeError(f"the Celery worker did not resume:\n{self.log_tail()}")

    def pause(self) -> None:
        """Take no new task, let the running and prefetched ones end, and drop the ones held for
        later (countdowns, retries): after this the worker does no database work until
        ``resume``. Beat, in the same process, only publishes to the queue that is not read.
        A worker that does not get idle within DRAIN_TIMEOUT is killed and its database sessions
        ended (the next test starts a fresh one)."""
        if not self.alive():
            self.end_sessions()
            return
        if not self.answers(30):
            self.kill()
            self.end_sessions()
            return
        control = celery_app.control
        for name in QUEUES:
            control.cancel_consumer(name, destination=[self.name], reply=True, timeout=10)
        inspect = control.inspect(destination=[self.name], timeout=5)
        # From now on no message reaches the worker, so the tasks it holds for later can only
        # get fewer: revoke them first (one coming due meanwhile shows as active below).
        held = [task["request"]["id"] for task in (inspect.scheduled() or {}).get(self.name, [])]
        if held:
            control.revoke(held, destination=[self.name], reply=True, timeout=10)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            active, reserved = inspect.active(), inspect.reserved()
            if active is not None and reserved is not None:  # noqa: SIM102 - None: no answer
                if not active.get(self.name) and not reserved.get(self.name):
                    return
            time.sleep(0.2)
        print(f"the Celery worker was still busy after {DRAIN_TIMEOUT:.0f}s: killed")
        self.kill()
        self.end_sessions()

    def end_sessions(self) -> None:
        """End the database sessions a killed worker leaves behind: a backend notices that its
        client is gone only when it next talks to it, and keeps its locks until then."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                [WORKER_APPLICATION],
            )

    def log_tail(self) -> str:
        path = self.log_dir / f"worker-{self.starts}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture(scope="session")
def sandbox_server(services: None) -> Iterator[SandboxServer]:
    server = serve_in_thread()
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox_server.url)
    client.reset()
    yield client
    client.reset()


@pytest.fixture(scope="session")
def worker(
    services: None,
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = Worker(tmp_path_factory.mktemp("worker"))
    worker.start()
    yield worker
    worker.stop()
    # Backends of a SIGKILLed worker can linger; they must not keep the test database alive.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


class Forges:
    """Sandbox projects wired to Baton, and reads of what the forge ended up with."""

    def __init__(self, sandbox: SandboxClient, api_url: str, baton_url: str):
        self.sandbox = sandbox
        self.api_url = api_url
        self.hook_url = f"{baton_url}/hooks/gitlab/"
        self.github_hook_url = f"{baton_url}/hooks/github/"
        self.forge = Forge.objects.create(
            kind="gitlab",
            slug="gitlab",
            name="Sandbox GitLab",
            api_url=api_url,
            token="sandbox-token",
            webhook_secret=HOOK_SECRET,
        )
        self.github_forge = Forge.objects.create(
            kind="github",
            slug="github",
            name="Sandbox GitHub",
            api_url=f"{api_url}/api/v3",
            token="ghp_sandbox",
            webhook_secret=HOOK_SECRET,
        )
        self.people = {"alice": self.person("alice", everything=True)}
        self.http = requests.Session()
        self.http.headers["PRIVATE-TOKEN"] = "sandbox-token"

    def project(
        self, path: str, files: dict[str, str] | None = None, **script: Any
    ) -> dict[str, Any]:
        project = self.sandbox.create_project(
            path, files=files or {}, hooks=[{"url": self.hook_url, "token": HOOK_SECRET}]
        )
        self.sandbox.set_script(path, **{"pending": 0.2, "running": 0.8, **script})
        return project

    def person(
        self,
        username: str,
        *,
        everything: bool = False,
        password: str = "pw",
        **grant: Any,
    ) -> Any:
        """A Baton user linked to ``username`` on both forges, with a grant if asked."""
        user = get_user_model().objects.create_user(username, f"{username}@example.com", password)
        for forge in (self.forge, self.github_forge):
            Identity.objects.create(forge=forge, username=username, user=user)
        if everything:
            grant = {"projects": "*", "actions": ["view", "trigger", "retry", "cancel", "deploy"]}
        if grant:
            Grant.objects.create(user=user, **grant)
        return user

    def repo(
        self, full_name: str, files: dict[str, str] | None = None, **script: Any
    ) -> dict[str, Any]:
        repo = self.sandbox.create_github_repo(
            full_name,
            files=files or {},
            hooks=[{"url": self.github_hook_url, "secret": HOOK_SECRET, "events": ["*"]}],
        )
        self.sandbox.set_run_script(full_name, **{"pending": 0.2, "running": 0.8, **script})
        return repo

    def github_api(self, path: str) -> Any:
        response = self.http.get(
            f"{self.api_url}/api/v3{path}",
            params={"per_page": 100},
            headers={"Authorization": "token ghp_sandbox"},
        )
        response.raise_for_status()
        return response.json()

    def api(self, path: str) -> Any:
        response = self.http.get(f"{self.api_url}/api/v4{path}", params={"per_page": 100})
        response.raise_for_status()
        return response.json()

    def statuses(self, project: str, sha: str) -> dict[str, str]:
        items = self.api(f"/projects/{quote(project, safe='')}/repository/commits/{sha}/statuses")
        return {item["name"]: item["status"] for item in items}

    def notes(self, project: str, iid: int) -> list[dict[str, Any]]:
        return self.api(f"/projects/{quote(project, safe='')}/merge_requests/{iid}/notes")

    def pipeline_variables(self, project: str) -> list[dict[str, str]]:
        return [
            {v["key"]: v["value"] for v in pipeline.get("variables", [])}
            for pipeline in self.sandbox.pipelines(project)
        ]


@pytest.fixture
def idle_worker(worker: Worker, transactional_db: None) -> Iterator[Worker]:
    """The suite's worker, taking tasks during the test and paused when it ends.

    It asks for ``transactional_db``, so it is set up after it and torn down before it: the
    pause (no task running, none to come) happens before pytest-django's flush. Otherwise a task
    still running from the test may hold a row lock while TRUNCATE locks table after table, and
    PostgreSQL aborts one of them ("deadlock detected"), which leaves the next test a dirty
    database. A worker a test killed is started again here, after the flush."""
    if not worker.alive():
        worker.start()
    worker.resume()
    yield worker
    worker.pause()


@pytest.fixture
def forges(
    sandbox: SandboxClient, idle_worker: Worker, live_server: Any, transactional_db: None
) -> Iterator[Forges]:
    yield Forges(sandbox, sandbox.base_url, live_server.url)
