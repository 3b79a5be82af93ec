"""`make run`: Baton on its embedded defaults with the sandbox forge and a demo that moves.

Starts the sandbox forge, the web server and a worker with its scheduler, seeds a demo
(acme/app triggers acme/api, acme/web and a child pipeline; acme/web is scripted to fail), opens a
merge request, pushes a new commit to it every minute, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from chains.models import Forge, Grant, Identity, Team
from config.preflight import (
    PREFIX,
    broker_problem,
    database_problem,
    fail,
    port_problem,
)
from notify.models import Channel, Event, Subscription
from sandbox.client import SandboxClient

FORGE_SLUG = "sandbox-gitlab"
BATON_YML = """\
# What a change to acme/app sets off downstream (see docs/baton-yml.md).
variables:
  RELEASE_STREAM: stable
  DEPLOY_TOKEN: {value: "demo-secret-value", masked: true}
downstream:
  - key: api
    label: API service
    project: acme/api
    variables: {ENVIRONMENT: staging}
  - key: web
    label: Web front end
    project: acme/web
  - key: checks
    label: Extra checks (child pipeline)
    project: self
    strategy: async
  - key: release
    label: Release build (tags)
    project: acme/api
    on: [tag]
    branches: "v*"
"""


class Command(BaseCommand):
    help = "Run Baton with the sandbox forge and a demo (what `make run` does)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8090)
        parser.add_argument(
            "--interval", type=float, default=60.0, help="seconds between demo commits (0: none)"
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
            env.update(_signin_env(sandbox_url))  # the sign-in buttons, against the sandbox
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-B"]
            worker += ["-s", str(settings.VAR_DIR / "beat-schedule"), "-P", "threads"]
            worker += ["-c", "8", "-l", "WARNING"]
            sandbox = [*manage, "sandbox", "--port", str(sandbox_port)]
            web = [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
            children.append(self._spawn("sandbox", sandbox, env))
            children.append(self._spawn("web", web, env))
            children.append(self._spawn("worker", worker, env))
            _wait_for(f"{sandbox_url}/_sandbox", "the sandbox forge", children)
            _wait_for(f"{baton_url}/healthz", "the web server", children)
            password = self._seed(baton_url, sandbox_url)
            _seed_signin(SandboxClient(sandbox_url), baton_url, env)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nBaton is running at {baton_url}/  (sign in as admin / {password})\n"
                )
            )
            self.stdout.write(
                f"Sandbox forge at {sandbox_url} (GitLab API at /api/v4, control API at "
                f"/_sandbox, see docs/sandbox.md).\n"
                f"Demo: acme/app!1 is open; a new commit lands every {interval:.0f} s. "
                f"Push one now:\n  curl -X POST -H 'Content-Type: application/json' "
                f'-d \'{{"files": {{"now.txt": "x"}}}}\' '
                f"{sandbox_url}/_sandbox/projects/acme%2Fapp/merge_requests/1/push\n"
                "Or sign in with the sandbox's GitLab as dora (group acme/platform) or its GitHub "
                "as gus (team acme/release): docs/sign-in.md.\n"
                f"Notifications (chain failed, recovered…) arrive in the sandbox chat: "
                f"{sandbox_url}/_sandbox/chat/{CHAT_ROOM}/page\n"
                "Ctrl-C stops everything.\n"
            )
            self._loop(SandboxClient(sandbox_url), interval, children)
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

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> _Child:
        log_path = settings.VAR_DIR / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child writes it until it stops
        start = log.tell()
        self.stdout.write(f"starting {name} (log: {_shown(log_path)})")
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )
        return _Child(name, process, log_path, start)

    def _seed(self, baton_url: str, sandbox_url: str) -> str:
        hook_secret = secrets.token_urlsafe(24)
        forge, _ = Forge.objects.update_or_create(
            slug=FORGE_SLUG,
            defaults={
                "kind": "gitlab",
                "name": "Sandbox GitLab",
                "api_url": sandbox_url,
                "token": secrets.token_urlsafe(24),
                "webhook_secret": hook_secret,
            },
        )
        # alice opens the demo's merge requests; her team may trigger, retry and cancel acme/*.
        alice, _ = get_user_model().objects.get_or_create(
            username="alice", defaults={"email": "alice@example.com"}
        )
        team, _ = Team.objects.get_or_create(name="Developers")
        team.members.add(alice)
        Grant.objects.get_or_create(
            team=team,
            projects="acme/*",
            defaults={"actions": ["view", "trigger", "retry", "cancel"]},
        )
        Identity.objects.get_or_create(forge=forge, username="alice", defaults={"user": alice})
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(username="admin")
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()

        sandbox = SandboxClient(sandbox_url)
        sandbox.reset()
        _notifications(sandbox)
        hooks = [{"url": f"{baton_url}/hooks/{FORGE_SLUG}/", "token": hook_secret}]
        sandbox.create_project(
            "acme/app", files={".baton.yml": BATON_YML, "app.py": "v = 1\n"}, hooks=hooks
        )
        sandbox.create_project("acme/api", files={"api.py": ""}, hooks=hooks)
        sandbox.create_project("acme/web", files={"web.js": ""}, hooks=hooks)
        sandbox.set_script("acme/app", "success", pending=1, running=5)
        sandbox.set_script("acme/api", "success", pending=2, running=12)
        sandbox.set_script(
            "acme/web",
            pending=1,
            running=8,
            queue=["failed", "success"],
            job="e2e-chrome",
            stage="test",
            failure_reason="script_failure",
            log="$ npm run e2e\n  1 failing: checkout shows the basket total\n"
            "ERROR: Job failed: exit code 1\n",
        )
        sandbox.open_merge_request(
            "acme/app",
            "feature/faster-search",
            target_branch="main",
            title="Make search faster",
            author="alice",
            files={"app.py": "v = 2\n"},
        )
        # A release tag on main: a tag chain, shown in the release view under v1.0.0.
        sandbox.tag("acme/app", "v1.0.0", author="alice")
        return password

    def _loop(self, sandbox: SandboxClient, interval: float, children: list[_Child]) -> None:
        next_push = time.monotonic() + interval if interval > 0 else float("inf")
        number = 2
        while True:
            _check_alive(children)
            if time.monotonic() >= next_push:
                sandbox.push(
                    "acme/app", 1, {"app.py": f"v = {number}\n"}, message=f"Iteration {number}"
                )
                number += 1
                next_push = time.monotonic() + interval
            time.sleep(0.5)


def _signin_env(sandbox_url: str) -> dict[str, str]:
    """Sign in with GitLab and GitHub against the sandbox: an application per forge, made up
    for this run (registered on the sandbox by ``_seed_signin``)."""
    env = {}
    for kind in ("gitlab", "github"):
        prefix = f"BATON_SIGNIN_{kind.upper()}"
        env[f"{prefix}_CLIENT_ID"] = f"demo-{kind}-{secrets.token_hex(8)}"
        env[f"{prefix}_SECRET"] = secrets.token_urlsafe(32)
        env[f"{prefix}_URL"] = sandbox_url
        env[f"{prefix}_FORGE"] = f"sandbox-{kind}"
    return env


def _seed_signin(sandbox: SandboxClient, baton_url: str, env: dict[str, str]) -> None:
    """The sandbox's OAuth applications, dora in GitLab group acme/platform and gus in GitHub
    team acme/release, and a grant to each group on acme/*."""
    gitlab = Forge.objects.get(slug=FORGE_SLUG)
    github, _ = Forge.objects.update_or_create(
        slug="sandbox-github",
        defaults={
            "kind": "github",
            "name": "Sandbox GitHub",
            "api_url": f"{gitlab.api_url}/api/v3",
            "token": secrets.token_urlsafe(24),
            "webhook_secret": secrets.token_urlsafe(24),
        },
    )
    for kind in ("gitlab", "github"):
        prefix = f"BATON_SIGNIN_{kind.upper()}"
        sandbox.register_oauth_app(
            kind,
            f"{baton_url}/accounts/{kind}/login/callback/",
            client_id=env[f"{prefix}_CLIENT_ID"],
            secret=env[f"{prefix}_SECRET"],
        )
    sandbox.set_group_member("acme/platform", "dora", 30)
    sandbox.set_team_member("acme", "release", "gus")
    for forge, group in ((gitlab, "acme/platform"), (github, "acme/release")):
        Grant.objects.get_or_create(
            forge=forge,
            forge_group=group,
            projects="acme/*",
            defaults={"actions": ["view", "trigger", "retry", "cancel"]},
        )


CHAT_ROOM = "releases"


def _notifications(sandbox: SandboxClient) -> None:
    """A chat channel posting to the sandbox's chat room, told of every acme/* chain's events
    (docs/notifications.md): its page is where the demo's notifications arrive."""
    channel, _ = Channel.objects.update_or_create(
        name="demo-chat", defaults={"url": sandbox.chat_url(CHAT_ROOM), "enabled": True}
    )
    Subscription.objects.get_or_create(
        channel=channel,
        projects="acme/*",
        defaults={
            "events": [
                Event.CHAIN_FAILED,
                Event.CHAIN_RECOVERED,
                Event.RUN_MANUAL,
                Event.RUN_REFUSED,
            ]
        },
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
