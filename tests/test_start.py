"""A start that explains itself (issue: one line per configuration problem, no traceback; `make run`
checks ports, database and broker first, shows a dying child's log, and stops on Ctrl-C)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from config.preflight import port_problem
from demo import history, world
from demo.management.commands.demo import _check_alive, _Child, _ChildDied

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The embedded defaults (SQLite and the file broker under a private var/), plus values."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY", "DEBUG"}
    }
    env.update({"DEBUG": "true", "BATON_VAR_DIR": str(tmp_path / "var")})
    env.update(values)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("baton: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        ({"DEBUG": "maybe"}, ["DEBUG='maybe'", "not a boolean"]),
        ({"DEBUG": "false"}, ["SECRET_KEY is not set"]),
        ({"CELERY_BROKER_URL": "kafka://h:9092"}, ["CELERY_BROKER_URL", "redis://"]),
        ({"BATON_POLL_AFTER": "soon"}, ["BATON_POLL_AFTER='soon'", "not a number"]),
        ({"DATABASE_URL": "nosuch://u:hunter2@db/x"}, ["DATABASE_URL", "u:***@db"]),
        (
            {"BATON_TRIGGER_LEASE": "5", "BATON_FORGE_TIMEOUT": "10"},
            ["BATON_TRIGGER_LEASE=5 must be longer than BATON_FORGE_TIMEOUT=10"],
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, values: dict[str, str], needles: list[str]
) -> None:
    result = _run([sys.executable, "manage.py", "check"], _env(tmp_path, **values))
    _assert_one_line(result, *needles)
    assert "hunter2" not in result.stderr


def test_a_worker_with_a_bad_setting_says_which(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"]
    result = _run(command, _env(tmp_path, BATON_MAX_RUNS="many"))
    _assert_one_line(result, "BATON_MAX_RUNS='many'")


def test_an_unreachable_database_names_database_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgres://baton:hunter2@127.0.0.1:{_free_port()}/baton"
    result = _run([sys.executable, "manage.py", "migrate"], _env(tmp_path, DATABASE_URL=url))
    _assert_one_line(result, "cannot reach the database", "DATABASE_URL=postgres://baton:***@")
    assert "hunter2" not in result.stderr


def test_make_run_refuses_a_busy_port_and_an_unreachable_broker_before_starting(
    tmp_path: Path,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        broker = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
        command = [sys.executable, "manage.py", "demo", "--port", str(port)]
        command += ["--sandbox-port", str(_free_port())]
        result = _run(command, _env(tmp_path, CELERY_BROKER_URL=broker))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        f"baton: port {port} on 127.0.0.1 is in use or not allowed (Address already in use); "
        "choose another with `make run PORT=<port>`"
    )
    assert lines[1].startswith("baton: cannot reach the broker (CELERY_BROKER_URL=redis://:***@")
    assert len(lines) == 2
    assert "hunter2" not in result.stderr
    assert "starting" not in result.stdout  # nothing was started
    assert not (tmp_path / "var" / "sandbox.log").exists()


def test_a_port_just_left_by_a_stopped_server_is_free_again() -> None:
    """After Ctrl-C, the connections the server closed wait in TIME_WAIT: `make run` right away
    must not call the port busy (the servers reuse the address), while a listener still is."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_problem(port) is not None  # listening: busy
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server closes first: its side waits in TIME_WAIT
            client.recv(1)
    assert port_problem(port) is None


def test_a_dying_child_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "web.log"
    log_path.write_text("an older run's line\n")
    start = log_path.stat().st_size
    with open(log_path, "ab") as log:
        script = "import sys; print('listening'); print('Error: That port is in use.'); sys.exit(3)"
        process = subprocess.Popen([sys.executable, "-c", script], stdout=log)
        process.wait(30)
    child = _Child("web", process, log_path, start)
    with pytest.raises(_ChildDied) as died:
        _check_alive([child])
    message = str(died.value)
    assert message.startswith("baton: the web process stopped (exit status 3); last lines of ")
    assert message.endswith("listening\nError: That port is in use.")
    assert "older run" not in message


def test_ctrl_c_while_starting_stops_everything_at_once(tmp_path: Path) -> None:
    port, sandbox_port = _free_port(), _free_port()
    command = [sys.executable, "manage.py", "demo", "--port", str(port)]
    command += ["--sandbox-port", str(sandbox_port), "--interval", "0"]
    demo = subprocess.Popen(
        command,
        env=_env(tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:  # the children are started; the web server is not up yet
            seen.append(line)
            if line.startswith("starting worker"):
                break
        assert seen and seen[-1].startswith("starting worker"), "".join(seen)
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "Traceback" not in rest
    assert "stopping" in rest
    assert "Baton is running" not in rest
    for probe_port in (port, sandbox_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", probe_port)) != 0  # nothing listens any more
    # The worker listens on no port: no process started with this var/ is left (the signal
    # used to land between starting the worker and keeping it, which left it running).
    assert _seen_within(lambda: not _processes_using(str(tmp_path / "var")), 10)


def _processes_using(argument: str) -> list[int]:
    """Processes whose command line holds ``argument`` (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if argument.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


def _seen_within(check: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    return last


NESTED_ACROSS_FORGES = """
    SELECT chain.id FROM chains_run AS run
      JOIN chains_run AS parent ON parent.id = run.parent_id
      JOIN chains_chain AS chain ON chain.id = run.chain_id
      JOIN chains_repository AS repo ON repo.id = run.repository_id
      JOIN chains_forge AS forge ON forge.id = repo.forge_id
      JOIN chains_repository AS up_repo ON up_repo.id = chain.repository_id
      JOIN chains_forge AS up_forge ON up_forge.id = up_repo.forge_id
     WHERE forge.kind = 'github' AND up_forge.kind = 'gitlab' AND chain.reason != ?
"""


def test_make_run_shows_a_nested_chain_across_forges_and_a_chat_message(tmp_path: Path) -> None:
    """`make run`'s demo on its embedded defaults: soon after it says it runs, acme/app!1's chain
    has a run on GitHub under its GitLab run, and the release chain's message is in the chat."""
    port, sandbox_port = _free_port(), _free_port()
    command = [sys.executable, "manage.py", "demo", "--port", str(port)]
    command += ["--sandbox-port", str(sandbox_port), "--interval", "0"]
    demo = subprocess.Popen(
        command,
        env=_env(tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:
            seen.append(line)
            if line.startswith("Baton is running") or line.startswith("Ctrl-C"):
                break
        assert any(line.startswith("Baton is running") for line in seen), "".join(seen)
        database = sqlite3.connect(tmp_path / "var" / "baton.sqlite3", timeout=10)

        def nested() -> Any:
            return database.execute(NESTED_ACROSS_FORGES, (history.REASON,)).fetchone()

        assert _seen_within(nested, 40), "no chain with a GitHub run nested under a GitLab run"
        chat = f"http://127.0.0.1:{sandbox_port}/_sandbox/chat/{world.CHAT_ROOM}"

        def message() -> list[str]:
            return [m["title"] for m in requests.get(chat, timeout=5).json()]

        titles = _seen_within(message, 40)
        assert titles and titles[0].startswith("Release chain finished: acme/app"), titles
        database.close()
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate(timeout=10)
    assert "Traceback" not in rest
