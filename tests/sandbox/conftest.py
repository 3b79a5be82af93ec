"""Fixtures: one in-process sandbox forge per module (fast clock), reset before every test, the
real python-gitlab and PyGithub clients pointed at it, and a tiny webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import gitlab
import pytest
from github import Auth, Github

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, serve_in_thread

TIME_SCALE = 20.0  # default script: pending 0.5 s + running 3 s → 0.175 s real


@pytest.fixture(scope="module")
def forge() -> Iterator[SandboxServer]:
    server = serve_in_thread(port=0, time_scale=TIME_SCALE)
    yield server
    server.shutdown()


@pytest.fixture
def control(forge: SandboxServer) -> SandboxClient:
    client = SandboxClient(forge.url)
    client.reset()
    return client


@pytest.fixture
def gl(forge: SandboxServer, control: SandboxClient) -> gitlab.Gitlab:
    return gitlab.Gitlab(forge.url, private_token="x", retry_transient_errors=False)


def github_client(forge: SandboxServer, token: str = "x") -> Github:
    """PyGithub as Baton would build it for a GitHub Enterprise base URL, without retries or
    throttling sleeps (the sandbox is local and tests inject errors on purpose)."""
    return Github(
        base_url=f"{forge.url}/api/v3",
        auth=Auth.Token(token),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


@pytest.fixture
def gh(forge: SandboxServer, control: SandboxClient) -> Github:
    return github_client(forge)


@pytest.fixture
def make_github(forge: SandboxServer) -> Callable[..., Github]:
    """``make_github(token="ghs_…", per_page=3)``: another PyGithub client on the sandbox."""

    def make(token: str = "x", **options: Any) -> Github:
        options = {
            "retry": None,
            "seconds_between_requests": None,
            "seconds_between_writes": None,
            **options,
        }
        return Github(base_url=f"{forge.url}/api/v3", auth=Auth.Token(token), **options)

    return make


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hooks/gitlab/"

    def events(self, event: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["headers"].get("X-Gitlab-Event") == event]

    def github_events(self, event: str | None = None) -> list[dict[str, Any]]:
        """GitHub deliveries (``X-GitHub-Event``, any header case), optionally of one event."""
        with self.lock:
            return [
                r
                for r in self.received
                if r["github_event"] is not None and (event is None or r["github_event"] == event)
            ]


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if (self.headers.get("Content-Type") or "").startswith("application/x-www-form"):
            payload = json.loads(parse_qs(body.decode())["payload"][0])
        else:
            payload = json.loads(body)
        with self.server.lock:
            self.server.received.append(
                {
                    "headers": dict(self.headers.items()),
                    "payload": payload,
                    "body": body,
                    "github_event": self.headers.get("X-GitHub-Event"),
                }
            )
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
