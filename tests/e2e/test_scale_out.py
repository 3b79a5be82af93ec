"""Many workers, many machines: two gunicorn servers and three Celery workers (two thread pools,
one prefork pool) on one PostgreSQL and one broker — Redis, then RabbitMQ — run a 100-target
fan-out, a supersede and a retry storm, and every target is triggered exactly once.

The processes share nothing but the database and the broker (each has its own local-memory
cache), as separate machines would; the sandbox's hooks spread the deliveries over both web
servers like a load balancer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from knox.models import AuthToken
from kombu import Connection, Queue

from chains.models import AuditEvent, Chain, Forge, Grant, Identity, Run, RunAttempt
from sandbox.client import SandboxClient
from tests.e2e.conftest import HOOK_SECRET, eventually, free_port

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = int(os.environ.get("BATON_SCALE_OUT_TARGETS", "100"))  # fewer: to debug it
APPLICATION = "baton-scale-out"  # the database sessions of these processes, to end them after
BROKERS = {
    "redis": "redis://127.0.0.1:6379/12",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
ENGINE_CLOCKS = {
    "BATON_SWEEP_INTERVAL": "1",
    "BATON_STALE_AFTER": "2",
    "BATON_TRIGGER_LEASE": "12",
    "BATON_LOOKUP_GRACE": "5",
    "BATON_POLL_AFTER": "5",
    "BATON_FORGE_TIMEOUT": "8",
}


def _reachable(url: str) -> str | None:
    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu's transports raise many kinds
        return str(exc)
    return None


def _empty(url: str) -> None:
    """Start from an empty queue (what an earlier run left names rows that are gone)."""
    if url.startswith("redis://"):
        redis.Redis.from_url(url).flushdb()
        return
    with Connection(url) as conn:
        for declared in settings.CELERY_TASK_QUEUES:
            queue = Queue(declared.name).bind(conn.default_channel)
            queue.declare()  # as the workers declare it (durable, no arguments)
            queue.purge()


class Cluster:
    """Two web servers and three workers, started as separate process groups."""

    def __init__(self, broker: str, log_dir: Path):
        self.broker = broker
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.web_ports = [free_port(), free_port()]

    def env(self) -> dict[str, str]:
        database: Any = settings.DATABASES["default"]
        url = (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}?application_name={APPLICATION}"
        )
        env = {key: value for key, value in os.environ.items() if key != "CACHE_URL"}
        return {
            **env,
            **ENGINE_CLOCKS,
            "DATABASE_URL": url,
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            "CELERY_BROKER_URL": self.broker,
            "BATON_WORKER_METRICS_PORT": "0",
        }

    def start(self) -> None:
        for index, port in enumerate(self.web_ports):
            self._spawn(
                f"web-{index}",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--worker-class",
                    "gthread",
                ],
            )
        tag = f"{os.getpid()}-{time.monotonic_ns()}"
        for name, pool, extra in (
            ("threads-a", "threads", ["-c", "8", "-B", "-s", str(self.log_dir / "beat")]),
            ("threads-b", "threads", ["-c", "8"]),
            ("prefork", "prefork", ["-c", "2"]),
        ):
            self._spawn(
                name,
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-n",
                    f"{name}-{tag}@{socket.gethostname()}",
                    "-P",
                    pool,
                    *extra,
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "INFO",
                ],
            )
        for port in self.web_ports:
            eventually(partial(self._answers, port), 60, f"gunicorn on {port}")

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _answers(self, port: int) -> bool:
        self.assert_alive()
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def assert_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} stopped:\n{self.log(name)}"

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.web_ports[index % 2]}"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                [APPLICATION],
            )


@pytest.fixture(params=sorted(BROKERS))
def cluster(
    request: pytest.FixtureRequest,
    services: None,
    transactional_db: None,
    tmp_path: Path,
) -> Iterator[Cluster]:
    broker = BROKERS[request.param]
    problem = _reachable(broker)
    if problem:
        message = f"needs {request.param} at {broker}: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true, so this fails instead of skipping")
        pytest.skip(message)
    _empty(broker)
    cluster = Cluster(broker, tmp_path)
    cluster.start()
    yield cluster
    cluster.stop()  # before pytest-django's flush, so that no session holds a lock it waits for


def _pipelines(sandbox: SandboxClient, project: str, sha: str) -> list[dict[str, Any]]:
    """The downstream pipelines set off by the upstream commit ``sha``."""
    return [
        pipeline
        for pipeline in sandbox.pipelines(project)
        if {"key": "UPSTREAM_SHA", "value": sha}
        in [{"key": v["key"], "value": v["value"]} for v in pipeline.get("variables", [])]
    ]


@pytest.mark.timeout(900)
def test_many_processes_trigger_every_target_exactly_once(
    cluster: Cluster, sandbox: SandboxClient
) -> None:
    api_url = sandbox.base_url
    Forge.objects.create(
        kind="gitlab",
        slug="gitlab",
        name="Sandbox GitLab",
        api_url=api_url,
        token="sandbox-token",
        webhook_secret=HOOK_SECRET,
    )
    forge = Forge.objects.get(slug="gitlab")
    alice = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    Identity.objects.create(forge=forge, username="alice", user=alice)
    Grant.objects.create(
        user=alice, projects="*", actions=["view", "trigger", "retry", "cancel", "deploy"]
    )
    _, token = AuthToken.objects.create(alice)

    def hooks(index: int) -> list[dict[str, str]]:  # a load balancer in front of both servers
        return [{"url": f"{cluster.url(index)}/hooks/gitlab/", "token": HOOK_SECRET}]

    projects = [f"down/p{index:03d}" for index in range(TARGETS)]
    for index, project in enumerate(projects):
        sandbox.create_project(project, files={"x": ""}, hooks=hooks(index))
        sandbox.set_script(project, "success", pending=0.2, running=600)  # still running later
    downstream = "".join(
        f"  - key: t{index:03d}\n    project: {project}\n" for index, project in enumerate(projects)
    )
    sandbox.create_project(
        "acme/app", files={".baton.yml": f"downstream:\n{downstream}"}, hooks=hooks(0)
    )

    # 1. A 100-target fan-out.
    started = time.monotonic()
    mr = sandbox.open_merge_request(
        "acme/app",
        "feature/x",
        target_branch="main",
        title="Fan out",
        author="alice",
        files={"app.py": "1"},
    )
    first_sha = mr["sha"]

    def all_created(sha: str) -> bool:
        cluster.assert_alive()
        return Run.objects.filter(chain__head_sha=sha).exclude(remote_id="").count() == TARGETS

    eventually(lambda: all_created(first_sha), 180, f"{TARGETS} pipelines for the first commit")
    print(f"fan-out: {TARGETS} pipelines created {time.monotonic() - started:.1f} s after the MR")
    for project in projects:
        assert len(_pipelines(sandbox, project, first_sha)) == 1, project

    # 2. A new commit supersedes the running chain: its pipelines are canceled, the new commit's
    # are created, once each. The new ones fail first (for the retry storm).
    for project in projects:
        sandbox.set_script(project, "success", pending=0.2, running=0.5, queue=["failed"])
    second_sha = sandbox.push("acme/app", mr["iid"], {"app.py": "2"}, message="Again")
    first = Chain.objects.get(head_sha=first_sha)

    def superseded() -> bool:
        cluster.assert_alive()
        done = first.runs.filter(status="canceled").count() == TARGETS
        return done and all_created(second_sha)

    eventually(superseded, 180, "the first chain canceled and the second one triggered")
    second = Chain.objects.get(head_sha=second_sha)

    def settled(status: str) -> bool:
        cluster.assert_alive()
        return second.runs.filter(status=status).count() == TARGETS

    eventually(lambda: settled("failed"), 180, "every run of the second chain to fail")
    # ...and the chain with them: it stays running while Baton reads why each run failed
    # (a `retry:` decision may be pending), and only then may "retry failed" act.
    eventually(lambda: Chain.objects.get(pk=second.pk).status == "failed", 120, "the chain to fail")
    print(f"supersede and failures: {time.monotonic() - started:.1f} s after the MR")
    for project in projects:
        (old,) = _pipelines(sandbox, project, first_sha)
        assert old["status"] == "canceled", project
        assert len(_pipelines(sandbox, project, second_sha)) == 1, project

    # 3. A retry storm: 24 "retry failed" requests spread over both servers at once, and
    # `/baton retry` comments on the change. Every failed run is retried exactly once.
    def retry_failed(index: int) -> int:
        response = requests.post(
            f"{cluster.url(index)}/api/v1/chains/{second.pk}/retry-failed/",
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )
        return response.status_code

    with ThreadPoolExecutor(12) as pool:
        comments = [
            pool.submit(sandbox.comment, "acme/app", mr["iid"], "/baton retry") for _ in range(4)
        ]
        answers = Counter(pool.map(retry_failed, range(24)))
        for comment in comments:
            comment.result()
    # Each request is accepted, or refused because nothing has failed any more: the comments
    # may have retried every run before any request arrived. Which surface wins does not matter;
    # that every run is retried exactly once does (below).
    assert set(answers) <= {202, 409}, answers

    print(f"storm answers {dict(answers)} at {time.monotonic() - started:.1f} s")
    eventually(
        lambda: settled("success"),
        180,
        f"every retried run to succeed (answers {dict(answers)}; attempts "
        f"{Counter(second.runs.values_list('attempt', flat=True))})",
    )
    print(f"retries done: {time.monotonic() - started:.1f} s after the MR")
    runs = list(second.runs.all())
    assert [run.attempt for run in runs] == [2] * TARGETS
    assert RunAttempt.objects.filter(run__chain=second).count() == TARGETS
    retries = Counter(
        AuditEvent.objects.filter(action="run.retry", run__chain=second).values_list(
            "run_id", flat=True
        )
    )
    assert set(retries.values()) == {1} and len(retries) == TARGETS
    for project in projects:
        (pipeline,) = _pipelines(sandbox, project, second_sha)
        assert pipeline["status"] == "success", project
    cluster.assert_alive()
