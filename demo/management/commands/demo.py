"""`make run`: Baton on its embedded defaults with the sandbox forge and a demo that moves.

Starts the sandbox forge, the web server and a worker with its scheduler, seeds the demo (its
projects: demo/world.py; its people, quarantine and chat channel: demo/seed.py; two weeks of past
chains: demo/history.py), opens a merge request and tags a release, pushes a new commit to the
merge request every ``--interval`` seconds, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from config.preflight import (
    PREFIX,
    broker_problem,
    database_problem,
    fail,
    port_problem,
)
from demo import history, seed, world
from sandbox.client import SandboxClient

# Shorter than a chain of the demo (acme/api then acme/docs, about 100 s): a new commit
# supersedes a chain that is still running. Commits land alternately one interval and LONG_GAP
# intervals apart, so that every other chain runs to its end (acme/docs on GitHub included).
DEFAULT_INTERVAL = 45.0
LONG_GAP = 3


class Command(BaseCommand):
    help = "Run Baton with the sandbox forge and a demo (what `make run` does)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8090)
        parser.add_argument(
            "--interval",
            type=float,
            default=DEFAULT_INTERVAL,
            help=f"seconds between demo commits, every other gap {LONG_GAP} times as long "
            "(0: none)",
        )

    def handle(
        self, *args: Any, port: int, sandbox_port: int, interval: float, **options: Any
    ) -> None:
        # Ctrl-C or SIGTERM at any point stops everything at once (KeyboardInterrupt below).
        signal.signal(signal.SIGTERM, _interrupt)
        children: list[_Child] = []
        try:
            self._preflight(port, sandbox_port)
            call_command("migrate", interactive=False, verbosity=0)
            baton_url = f"http://127.0.0.1:{port}"
            sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            env = {
                **os.environ,
                "DEBUG": os.environ.get("DEBUG", "true"),
                "BATON_BASE_URL": baton_url,
            }
            signin_env = seed.signin_env(sandbox_url)  # the sign-in buttons, against the sandbox
            env.update(signin_env)
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-B"]
            worker += ["-s", str(settings.VAR_DIR / "beat-schedule"), "-P", "threads"]
            worker += ["-c", "8", "-l", "WARNING"]
            sandbox_command = [*manage, "sandbox", "--port", str(sandbox_port)]
            web = [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
            self._spawn("sandbox", sandbox_command, env, children)
            self._spawn("web", web, env, children)
            self._spawn("worker", worker, env, children)
            _wait_for(f"{sandbox_url}/_sandbox", "the sandbox forge", children)
            _wait_for(f"{baton_url}/healthz", "the web server", children)
            sandbox = SandboxClient(sandbox_url)
            password = self._seed(sandbox, baton_url, signin_env)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nBaton is running at {baton_url}/  (sign in as admin / {password})\n"
                )
            )
            self.stdout.write(_guide(baton_url, sandbox_url, interval))
            self._loop(sandbox, interval, children)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        except _ChildDied as died:
            self.stderr.write(str(died))
            raise SystemExit(1) from None
        finally:
            _stop(children)

    def _preflight(self, port: int, sandbox_port: int) -> None:
        """Every reason not to start, as one line each, before anything is started."""
        problems = [
            port_problem(port, setting="PORT"),
            port_problem(sandbox_port, setting="SANDBOX_PORT"),
            database_problem(),
            broker_problem(),
        ]
        found = [problem for problem in problems if problem]
        if found:
            for problem in found[:-1]:
                self.stderr.write(f"{PREFIX}{problem}")
            fail(found[-1])

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str], children: list[_Child]
    ) -> None:
        """Start ``command`` and add it to ``children`` with Ctrl-C and SIGTERM held back
        meanwhile: a signal that arrives as it starts is taken once the child is on the list,
        so ``_stop`` stops it too."""
        log_path = settings.VAR_DIR / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child writes it until it stops
        start = log.tell()
        self.stdout.write(f"starting {name} (log: {_shown(log_path)})")
        held = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, held),
            )
            children.append(_Child(name, process, log_path, start))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)

    def _seed(self, sandbox: SandboxClient, baton_url: str, signin_env: dict[str, str]) -> str:
        """The sandbox's world and Baton's rows (the history and the quarantine are there before
        the first chain is planned), then the changes that set the chains off."""
        hooks = seed.forges(sandbox.base_url, baton_url)
        password = seed.people()
        sandbox.reset()
        seed.notifications(sandbox)
        repositories = seed.repositories(world.build(sandbox, hooks))
        seed.quarantined(repositories[world.E2E])
        written = history.seed(repositories)
        if written:
            self.stdout.write(f"seeded {written} past chains ({history.DAYS} days of history)")
        seed.signin(sandbox, baton_url, signin_env)
        world.start_changes(sandbox)
        return password

    def _loop(self, sandbox: SandboxClient, interval: float, children: list[_Child]) -> None:
        gaps = itertools.cycle([interval, interval * LONG_GAP])
        next_push = time.monotonic() + next(gaps) if interval > 0 else float("inf")
        number = 3
        while True:
            _check_alive(children)
            if time.monotonic() >= next_push:
                world.push(sandbox, number)
                number += 1
                next_push = time.monotonic() + next(gaps)
            time.sleep(0.5)


def _guide(baton_url: str, sandbox_url: str, interval: float) -> str:
    """Where to look (README.md and docs/sandbox.md, "The demo", say the same at length)."""
    every = (
        f"{interval:.0f} s and {interval * LONG_GAP:.0f} s apart by turns"
        if interval > 0
        else "only when you push one"
    )
    return (
        f"Sandbox forge at {sandbox_url} (GitLab API at /api/v4, GitHub API at /api/v3, control "
        f"API at /_sandbox, see docs/sandbox.md).\n"
        f'The demo (docs/sandbox.md, "The demo"):\n'
        f"  {baton_url}/  acme/app!1's chain: acme/api → acme/docs on GitHub (nested), acme/web "
        f"retried automatically (attempt 2), acme/e2e quarantined (a soft failure), an ETA from "
        f"two weeks of history.\n"
        f"  New commits land on {world.APP}!1 {every}: the first of a pair supersedes the running "
        f"chain, which is canceled on its own. Push one now:\n    curl -X POST -H 'Content-Type: "
        f'application/json\' -d \'{{"files": {{"now.txt": "x"}}}}\' '
        f"{sandbox_url}/_sandbox/projects/acme%2Fapp/merge_requests/1/push\n"
        f"  {baton_url}/health/ and {baton_url}/repositories/: durations and failure rates per "
        f"day.\n"
        f"  Notifications (release v1.0.0 finished, chain failed…) arrive in the sandbox chat: "
        f"{sandbox_url}/_sandbox/chat/{world.CHAT_ROOM}/page\n"
        "Or sign in with the sandbox's GitLab as dora (group acme/platform) or its GitHub as gus "
        "(team acme/release): docs/sign-in.md.\n"
        "Ctrl-C stops everything.\n"
    )


class _ChildDied(Exception):
    pass


class _Child:
    """A process `make run` started, with the part of its log written since it started."""

    def __init__(
        self, name: str, process: subprocess.Popen[bytes], log_path: Path, start: int
    ) -> None:
        self.name, self.process, self.log_path, self.start = name, process, log_path, start

    def tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.start)
                text = log.read()[-64_000:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)


def _interrupt(*args: Any) -> None:
    raise KeyboardInterrupt


def _check_alive(children: list[_Child]) -> None:
    for child in children:
        code = child.process.poll()
        if code is not None:
            tail = child.tail()
            raise _ChildDied(
                f"{PREFIX}the {child.name} process stopped (exit status {code}); "
                f"last lines of {_shown(child.log_path)}:\n{tail or '(empty)'}"
            )


def _stop(children: list[_Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
        except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
            child.process.kill()


def _wait_for(url: str, what: str, children: list[_Child], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(children)
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise _ChildDied(f"{PREFIX}{what} did not answer at {url} within {timeout:.0f} s")
