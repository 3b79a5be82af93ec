"""The image's entry point (deploy/entrypoint.sh) run directly, as the container would run it, with
production settings (DEBUG off, HTTPS behind a proxy, secrets as files) against a scratch
PostgreSQL database and the test broker: migrate, check --deploy, gunicorn answering /healthz,
/readyz and static files, a Celery worker and the scheduler starting and stopping on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
HOST = "baton.example.test"

pytestmark = pytest.mark.usefixtures("services")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def scratch_database(services: None) -> Iterator[str]:
    """A new, empty PostgreSQL database beside the test one; dropped afterwards."""
    db: Any = settings.DATABASES["default"]
    name = f"{db['NAME']}_entrypoint"
    admin = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    if db["PASSWORD"]:
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def prod_env(scratch_database: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment the container gets: production settings, secrets as files."""
    secret_dir = tmp_path_factory.mktemp("secrets")
    (secret_dir / "secret_key").write_text(secrets.token_urlsafe(50) + "\n")
    (secret_dir / "database_url").write_text(scratch_database + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER"}
        and not k.startswith(("BATON_", "PYTEST", "DJANGO_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DEBUG="false",
        SECRET_KEY_FILE=str(secret_dir / "secret_key"),
        DATABASE_URL_FILE=str(secret_dir / "database_url"),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}",
        BATON_BASE_URL=f"https://{HOST}",
        BATON_PROXY_SSL_HEADER="X-Forwarded-Proto",
        BATON_VAR_DIR=str(tmp_path_factory.mktemp("var")),
        LOG_LEVEL="INFO",
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=240
    )


def _get(url: str, **headers: str) -> tuple[int, bytes]:
    """GET without following redirects (they point at the public https host)."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=5)
    try:
        conn.request("GET", parsed.path, headers={"Host": HOST, **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_for(predicate, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: the process ended ({process.returncode}):\n{log.read_text()}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what}: not within 90 s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"did not stop on SIGTERM within 40 s:\n{log.read_text()}")


def test_unknown_command_is_refused_in_words(prod_env: dict[str, str]) -> None:
    result = _run(prod_env, "serve")
    assert result.returncode == 64
    assert "unknown command 'serve'" in result.stderr and "web, worker, beat" in result.stderr


def test_migrate_then_deployment_checks_pass(prod_env: dict[str, str], scratch_database) -> None:
    result = _run(prod_env, "migrate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Applying chains.0001" in result.stdout
    with psycopg.connect(scratch_database) as conn:
        (count,) = conn.execute("SELECT count(*) FROM django_migrations").fetchone()  # type: ignore[misc]
    assert count > 10
    again = _run(prod_env, "migrate")
    assert again.returncode == 0 and "No migrations to apply" in again.stdout

    check = _run(prod_env, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout
    # The same check fails the start of a careless deployment.
    careless = _run({**prod_env, "BATON_HTTPS": "false"}, "check")
    assert careless.returncode != 0 and "security.W" in careless.stderr + careless.stdout


def test_web_serves_probes_and_static_files_then_stops(
    prod_env: dict[str, str], tmp_path: Path
) -> None:
    assert _run(prod_env, "migrate").returncode == 0
    collected = _run(prod_env, "manage", "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    port = _free_port()
    env = {**prod_env, "PORT": str(port), "BATON_BIND": f"127.0.0.1:{port}"}
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            [str(ENTRYPOINT), "web"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _get(f"{base}/healthz")[0] == 200, "gunicorn /healthz", web, log)
        status, body = _get(f"{base}/healthz")
        assert json.loads(body) == {"status": "ok"}
        status, body = _get(f"{base}/readyz")
        assert status == 200, body
        assert json.loads(body)["database"] == "ok" and json.loads(body)["broker"] == "ok"
        # HTTPS is required: plain http is redirected, the proxy's header makes it https.
        assert _get(f"{base}/login/")[0] == 301
        assert _get(f"{base}/login/", **{"X-Forwarded-Proto": "https"})[0] == 200
        # Static files are served by gunicorn itself (whitenoise).
        static = next(p for p in (ROOT / "static").rglob("*.css"))
        url = f"{base}/static/{static.relative_to(ROOT / 'static').as_posix()}"
        status, body = _get(url, **{"X-Forwarded-Proto": "https"})
        assert status == 200 and body == static.read_bytes()
        # The image's HEALTHCHECK command, with the container's environment.
        probe = subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "healthcheck.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert probe.returncode == 0, probe.stderr
        assert b"Booting worker" in log.read_bytes()
        assert log.read_text().count("Booting worker") == 2  # WEB_CONCURRENCY defaults to 2
    finally:
        _stop(web, log)
    assert web.returncode == 0, log.read_text()
    down = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "healthcheck.py")], env=env, timeout=30
    )
    assert down.returncode == 1


def test_worker_and_scheduler_start_and_stop(prod_env: dict[str, str], tmp_path: Path) -> None:
    assert _run(prod_env, "migrate").returncode == 0
    worker_log = tmp_path / "worker.log"
    env = {**prod_env, "CELERY_POOL": "solo", "CELERY_CONCURRENCY": "1"}
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            [str(ENTRYPOINT), "worker", "-n", f"entrypoint-test-{os.getpid()}@%h"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(lambda: b" ready." in worker_log.read_bytes(), "worker", worker, worker_log)
    finally:
        _stop(worker, worker_log)

    # The scheduler on an in-memory broker, so its sweeps reach no shared queue.
    schedule = tmp_path / "beat-schedule"
    beat_log = tmp_path / "beat.log"
    env = {**prod_env, "CELERY_BROKER_URL": "memory://", "BATON_BEAT_SCHEDULE": str(schedule)}
    with beat_log.open("wb") as out:
        beat = subprocess.Popen(
            [str(ENTRYPOINT), "beat"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(
            lambda: any(tmp_path.glob("beat-schedule*")) and b"Starting" in beat_log.read_bytes(),
            "beat",
            beat,
            beat_log,
        )
    finally:
        _stop(beat, beat_log)
