"""The sandbox forge as one object: state, pipeline clock, webhooks, faults and the API modules.

``Sandbox.handle(request)`` is transport-independent: it returns a ``Response``, or ``None`` when
the connection must be dropped without an answer (fault modes ``drop`` and ``drop_after``).
A forge API module is any object with a ``router`` (``sandbox.web.Router``); it may also have
``dispatch(request)`` (its own request handling around the router) and
``fault_response(fault, request)`` (its own shape of injected error answers). ``self.apis`` holds
the GitLab (``/api/v4``) and the GitHub (``/api/v3``) modules.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol, cast

from sandbox.chat import ChatRooms
from sandbox.control import ControlAPI
from sandbox.faults import Fault, Faults, rate_limit_headers
from sandbox.github.api import GitHubAPI
from sandbox.github.control import GitHubControl
from sandbox.github.hooks import GitHubHooks
from sandbox.github.pages import GitHubPages
from sandbox.github.ratelimit import RateLimits
from sandbox.github.runs import WorkflowRunner
from sandbox.github.state import GitHubState
from sandbox.gitlab.api import GitLabAPI
from sandbox.gitlab.hooks import GitLabHooks
from sandbox.gitlab.pages import GitLabPages
from sandbox.gitlab.pipelines import PipelineRunner
from sandbox.journal import Journal
from sandbox.oauth import OAuthServer
from sandbox.persistence import StateFile
from sandbox.scheduler import Scheduler
from sandbox.state import SandboxState
from sandbox.web import ApiError, Request, Response, Router
from sandbox.webhooks import WebhookSender

log = logging.getLogger(__name__)


class ForgeAPI(Protocol):
    router: Router


class Pages(Protocol):
    def handle(self, request: Request) -> Response | None: ...


class Dispatcher(Protocol):
    def dispatch(self, request: Request) -> Response: ...


class Sandbox:
    def __init__(self, base_url: str = "http://127.0.0.1", time_scale: float = 1.0,
                 state_file: str | Path | None = None) -> None:
        self.state = SandboxState(base_url)
        self.scheduler = Scheduler(time_scale)
        self.runner = PipelineRunner(self.state, self.scheduler)
        self.faults = Faults()
        self.requests = Journal()
        self.webhooks = Journal()
        self.sender = WebhookSender(self.webhooks, self.faults, time_scale=time_scale)
        self.gitlab_hooks = GitLabHooks(self.state, self.sender)
        self.github = GitHubState(self.state)
        self.github.app_registry.time_scale = time_scale
        self.github_runner = WorkflowRunner(self.github, self.scheduler)
        self.github_limits = RateLimits()
        self.github_hooks = GitHubHooks(self.github, self.sender)
        self.oauth = OAuthServer(self.state)  # "Sign in with GitLab / GitHub" (sandbox/oauth.py)
        gitlab_api = GitLabAPI(self.state, self.runner)
        github_api = GitHubAPI(self.github, self.github_runner, self.github_limits)
        gitlab_api.oauth = github_api.oauth = self.oauth
        self.apis: list[ForgeAPI] = [gitlab_api, github_api, self.oauth]
        # The web pages the APIs link to (web_url, html_url): pipelines, jobs, workflow runs.
        self.pages: list[Pages] = [
            GitLabPages(self.state), GitHubPages(self.github, self.github_runner)]
        self.control = ControlAPI(self)
        GitHubControl(self).register(self.control)
        self.oauth.register_control(self.control)
        self.chat = ChatRooms()  # a local chat that takes Baton's notifications
        self.chat.register(self.control)
        # None: the world lives in memory only (tests, benchmarks); else kept in that file.
        self.state_file = StateFile(self, state_file) if state_file else None
        if self.state_file is not None:
            self.state_file.load()

    def start(self) -> None:
        self.scheduler.start()
        self.sender.start()
        if self.state_file is not None:
            self.state_file.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.sender.stop()
        if self.state_file is not None:
            self.state_file.stop()

    def reset(self) -> None:
        with self.state.lock:
            self.scheduler.clear()
            self.sender.forget_pending()
            self.state.reset()
            self.github.reset()
            self.github_runner.reset()
            self.github_limits.reset()
            self.github_hooks.reset()
            self.oauth.reset()
            self.faults.remove()
            self.requests.clear()
            self.webhooks.clear()
            self.chat.reset()

    # -- request handling ----------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        if request.method not in ("GET", "HEAD"):
            self.state.changed()  # the state file is written when something may have changed
        if self.control.router.matches(request.path):
            return self._dispatch(self.control.router, request)
        for api in self.apis:
            if api.router.matches(request.path):
                return self._handle_api(api, request)
        for pages in self.pages:
            answer = pages.handle(request)
            if answer is not None:
                return answer
        return Response.json({"error": "404 Not Found"}, 404)

    def _dispatch(self, router: Dispatcher, request: Request) -> Response:
        try:
            return router.dispatch(request)
        except ApiError as exc:
            return exc.response()
        except Exception:
            log.exception("sandbox: %s %s failed", request.method, request.path)
            return Response.json({"message": "500 Internal Server Error"}, 500)

    def _handle_api(self, api: ForgeAPI, request: Request) -> Response | None:
        latency, fault = self.faults.for_request(request.method, request.path)
        if latency:
            time.sleep(latency)
        record: dict[str, Any] = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "body": _body_for_log(request),
            "status": None,
            "fault": None,
        }
        handler = cast(Dispatcher, api) if hasattr(api, "dispatch") else api.router
        fault_answer = getattr(api, "fault_response", None)

        def faulted(f: Fault) -> Response:
            return fault_answer(f, request) if fault_answer else _fault_response(f)

        response: Response | None
        if fault is not None and fault.mode in ("before", "drop"):
            response = faulted(fault) if fault.mode == "before" else None
            record.update(response.log if response is not None else {})
        else:
            response = self._dispatch(handler, request)
            record.update(response.log)  # e.g. whether it counted against a rate limit
            if fault is not None:
                record["status_without_fault"] = response.status
                response = faulted(fault) if fault.mode == "after" else None
        if fault is not None:
            record["fault"] = {"id": fault.id, "mode": fault.mode}
        record["status"] = response.status if response is not None else None
        self.requests.add(record)
        return response


def _fault_response(fault: Fault) -> Response:
    status = fault.status or 500
    if status == 429:
        return Response(429, b"Retry later\n", "text/plain",
                        rate_limit_headers(fault.retry_after))
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    messages = {500: "500 Internal Server Error", 502: "502 Bad Gateway",
                503: "503 Service Unavailable", 504: "504 Gateway Timeout"}
    return Response.json({"message": messages.get(status, f"{status} Error")}, status, headers)


def _body_for_log(request: Request) -> Any:
    if not request.body:
        return None
    try:
        return request.json_body()
    except ApiError:
        return request.form or request.body.decode("utf-8", "replace")
