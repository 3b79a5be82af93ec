"""GitHub through PyGithub's requester: the only module that imports PyGithub.

PyGithub's own sleeping (seconds between requests and writes, retries on rate limits) is turned
off: pacing belongs to Baton's throttle and retries to the task queue.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import requests
import yaml
from github import Auth, Github, GithubException, GithubIntegration

from bots import caching, metrics
from bots.forges.base import (
    Budget,
    FailedJob,
    ForgeError,
    PipelineListing,
    RemoteChange,
    RemoteComment,
    RemotePipeline,
    RemoteProject,
    assert_names_repository,
    checked_id,
    checked_ref,
    checked_sha,
    checked_username,
    marker_in,
    project_segments,
    quoted_file_path,
)
from bots.forges.github_words import RUN_CONCLUSION, RUN_STATUS, parse_time, run_status  # noqa: F401
from chains import deadline, limits
from chains.status import Status

# Baton status -> GitHub commit status state (GitHub has no running or canceled state).
COMMIT_STATE: dict[Status, str] = {
    Status.QUEUED: "pending",
    Status.WAITING: "pending",
    Status.PENDING: "pending",
    Status.RUNNING: "pending",
    Status.MANUAL: "pending",
    Status.SUCCESS: "success",
    Status.FAILED: "failure",
    Status.CANCELED: "error",
    Status.SKIPPED: "success",
}
# Baton status -> GitHub check run (status, conclusion).
CHECK_RUN: dict[Status, tuple[str, str | None]] = {
    Status.QUEUED: ("queued", None),
    Status.WAITING: ("queued", None),
    Status.PENDING: ("queued", None),
    Status.RUNNING: ("in_progress", None),
    Status.MANUAL: ("completed", "action_required"),
    Status.SUCCESS: ("completed", "success"),
    Status.FAILED: ("completed", "failure"),
    Status.CANCELED: ("completed", "cancelled"),
    Status.SKIPPED: ("completed", "skipped"),
}

# Job conclusions that say why a run failed, the most telling first.
FAILED_JOB = ("failure", "timed_out", "startup_failure", "cancelled")

MAX_INPUTS = 25  # workflow_dispatch accepts at most 25 inputs
MAX_PAYLOAD_KEYS = 10  # repository_dispatch client_payload: at most 10 top-level keys
MAX_PAYLOAD_BYTES = 64 * 1024
DISPATCH_EVENT_TYPE = "baton"
SECONDARY_LIMIT_WAIT = 60.0
INPUTS_CACHE_SECONDS = 60.0


def _marked_payload(variables: dict[str, str]) -> dict[str, Any]:
    """A dispatch or deployment payload: the run's id and nonce at the top level, where a
    workflow's run-name can show them, and every variable."""
    return {
        "BATON_RUN_ID": variables.get("BATON_RUN_ID", ""),
        "BATON_RUN_NONCE": variables.get("BATON_RUN_NONCE", ""),
        "variables": variables,
    }


def _wait_from(status: int, headers: dict[str, str], message: str) -> float | None:
    """Seconds GitHub asks us to wait, or None when the answer is not a rate limit."""
    if status not in (403, 429):
        return None
    if headers.get("retry-after", "").isdigit():
        return float(headers["retry-after"])
    if (
        headers.get("x-ratelimit-remaining") == "0"
        and headers.get("x-ratelimit-reset", "").isdigit()
    ):
        return max(0.0, int(headers["x-ratelimit-reset"]) - time.time())
    if status == 429 or "rate limit" in message.lower():
        return SECONDARY_LIMIT_WAIT  # a secondary limit without headers: at least a minute
    return None


def _failed_step(steps: Any) -> str:
    """The name of a job's first step that did not pass ("" when none says so)."""
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and step.get("conclusion") in FAILED_JOB:
            return str(step.get("name") or "")
    return ""


class InstallationTokens(Protocol):
    """What a GitHub App forge shares between processes (``bots.forges.app_tokens``)."""

    def current(self, installation_id: int) -> str | None: ...
    def keep(self, installation_id: int, token: str, expires_at: datetime | None) -> None: ...
    def drop(self, installation_id: int, token: str) -> None: ...
    def installation_of(self, repository: str) -> int | None: ...
    def remember(self, repository: str, installation_id: int) -> None: ...
    def forget(self, repository: str) -> None: ...
    def known(self) -> list[tuple[int, str]]: ...
    def record(self, installations: list[tuple[int, str]]) -> None: ...


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App: its id, its private key (PEM) and where its installation tokens are kept."""

    app_id: int
    private_key: str
    tokens: InstallationTokens

    def __repr__(self) -> str:
        return f"AppCredentials(app_id={self.app_id}, private_key=<hidden>)"


@dataclass(frozen=True)
class Installation:
    id: int
    account: str
    repository_selection: str


class _InstallationTokenAuth(Auth.Auth):
    """The installation token of the request being sent: one forge row serves several
    installations, so the token is chosen per request (and masked in PyGithub's debug log)."""

    def __init__(self) -> None:
        self._current: ContextVar[str] = ContextVar("baton_github_installation_token", default="")

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self._current.get()

    @contextmanager
    def using(self, token: str) -> Iterator[None]:
        mark = self._current.set(token)
        try:
            yield
        finally:
            self._current.reset(mark)


class GitHubForge:
    kind = "github"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float,
        app_installation: bool = False,
        app: AppCredentials | None = None,
        name: str = kind,
    ):
        self.name = name  # the forge's slug, for the metrics' labels
        self._app = app
        self._app_auth = _InstallationTokenAuth() if app else None
        self._gh = Github(
            base_url=url.rstrip("/"),
            auth=self._app_auth or Auth.Token(token),
            timeout=max(1, round(timeout)),
            retry=None,
            per_page=100,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
            pool_size=32,
        )
        self._requester = self._gh.requester
        who = f"{url}|app:{app.app_id}" if app else f"{url}|{token}"
        self._who = hashlib.sha256(who.encode()).hexdigest()[:16]
        self.app_installation = app_installation or app is not None  # an App mirrors with checks
        self._integration = (
            GithubIntegration(
                auth=Auth.AppAuth(app.app_id, app.private_key),
                base_url=url.rstrip("/"),
                timeout=max(1, round(timeout)),
                retry=None,
                seconds_between_requests=None,
                seconds_between_writes=None,
                lazy=True,
            )
            if app
            else None
        )
        self._return_run_details = True  # until the server says it does not know the parameter
        self._etags: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def budgets(self, action: str, project: str, ref: str = "") -> list[Budget]:
        # GitHub's best practice: at least 1 s between mutating requests per token, and at most
        # 80 content-creating requests a minute.
        writes = Budget(f"github:{self._who}:writes", spacing=1.0)
        content = Budget(f"github:{self._who}:content", per_minute=80)
        return [writes, content]

    # -- plumbing ---------------------------------------------------------------------------

    def _send(
        self,
        action: str,
        verb: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        creates: bool = False,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        project: str | None,
    ) -> tuple[int, dict[str, str], Any]:
        """``project``: the repository the caller checked; the path must name exactly it."""
        assert_names_repository(path, "/repos", project, joined=False)
        deadline.check()  # no new request once a dry run's time is up
        request = (action, verb, path, params, body, headers, creates, ok)
        if self._app is None or self._app_auth is None:
            return self._exchange(*request)
        installation = self._installation_for(action, project)
        token = self._installation_token(action, installation, project)
        try:
            with self._app_auth.using(token):
                return self._exchange(*request)
        except ForgeError as exc:
            if exc.status_code != 401:
                raise
        # GitHub refused the token (expired early, revoked): drop it and mint once more.
        self._app.tokens.drop(installation, token)
        token = self._installation_token(action, installation, project)
        with self._app_auth.using(token):
            return self._exchange(*request)

    def _exchange(
        self,
        action: str,
        verb: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
        creates: bool,
        ok: tuple[int, ...],
    ) -> tuple[int, dict[str, str], Any]:
        started = time.perf_counter()
        try:
            status, raw_headers, text = self._requester.requestJson(
                verb, path, parameters=params, headers=headers, input=body
            )
        except (requests.RequestException, OSError) as exc:
            metrics.forge_call(self.name, verb, None, time.perf_counter() - started)
            raise ForgeError(
                f"{action}: no answer from GitHub ({type(exc).__name__})", uncertain=creates
            ) from None
        elapsed = time.perf_counter() - started
        lower = {str(k).lower(): str(v) for k, v in (raw_headers or {}).items()}
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        if status in ok or status == 304:
            metrics.forge_call(self.name, verb, status, elapsed, lower)
            return status, lower, data
        message = data.get("message", "") if isinstance(data, dict) else str(data or "")
        words = f"{action}: GitHub said {status}: {message or 'no message'}"
        wait = _wait_from(status, lower, message)
        metrics.forge_call(self.name, verb, status, elapsed, lower, wait=wait)
        if wait is not None:
            raise ForgeError(words, retry_after=wait, status_code=429)
        if status in (400, 401, 403, 404, 409, 410, 422):
            raise ForgeError(words, permanent=True, status_code=status)
        raise ForgeError(words, uncertain=creates, status_code=status)

    @staticmethod
    def _repo(project: str) -> str:
        parts = project_segments(project)
        if len(parts) != 2:
            raise ForgeError(
                f"refused project path {project[:80]!r}: a GitHub repository is owner/name",
                permanent=True,
            )
        return "/repos/" + "/".join(quote(part, safe="") for part in parts)

    @staticmethod
    def _workflow(workflow: str) -> str:
        """A workflow file name (or path) as one quoted URL segment."""
        quoted_file_path(workflow)  # checked like any file path
        return quote(workflow, safe="")

    # -- GitHub App: installations and their tokens ------------------------------------------

    def _app_call(self, action: str, call: Any) -> Any:
        """A call through PyGithub's ``GithubIntegration`` (the App's JWT), errors in words."""
        try:
            return call()
        except GithubException as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            message = str(data.get("message") or "no message")[:200]
            raise ForgeError(
                f"{action}: GitHub said {exc.status}: {message}",
                permanent=exc.status in (400, 401, 403, 404, 422),
                status_code=exc.status,
            ) from None
        except (requests.RequestException, OSError) as exc:
            raise ForgeError(f"{action}: no answer from GitHub ({type(exc).__name__})") from None

    def _installation_for(self, action: str, project: str | None) -> int:
        """The installation that covers ``project`` (asked once, then remembered), or for a
        request about no repository, the first installation of the App."""
        assert self._app is not None and self._integration is not None
        integration = self._integration
        if project is None:
            known = self._app.tokens.known() or [(i.id, i.account) for i in self.installations()]
            if not known:
                raise ForgeError(
                    f"{action}: the GitHub App is not installed anywhere", permanent=True
                )
            return known[0][0]
        found = self._app.tokens.installation_of(project)
        if found is not None:
            return found
        owner, name = project_segments(project)
        try:
            installation = self._app_call(
                f"{action}: find the GitHub App's installation on {project}",
                lambda: integration.get_repo_installation(owner, name),
            )
        except ForgeError as exc:
            if exc.status_code == 404:
                raise ForgeError(
                    f"{action}: the GitHub App is not installed on {project} (install it on the "
                    "repository or its organisation)",
                    permanent=True,
                    status_code=404,
                ) from None
            raise
        installation_id = int(installation.id)
        self._app.tokens.remember(project, installation_id)
        return installation_id

    def _installation_token(self, action: str, installation_id: int, project: str | None) -> str:
        """The shared token of the installation, minted anew when it is near its expiry."""
        assert self._app is not None and self._integration is not None
        integration = self._integration
        token = self._app.tokens.current(installation_id)
        if token:
            return token
        try:
            minted = self._app_call(
                f"{action}: mint a token for installation {installation_id}",
                lambda: integration.get_access_token(installation_id),
            )
        except ForgeError as exc:
            if exc.status_code == 404 and project:
                self._app.tokens.forget(project)  # uninstalled or moved: look it up again
            raise
        self._app.tokens.keep(installation_id, minted.token, minted.expires_at)
        return str(minted.token)

    def installations(self) -> list[Installation]:
        """The App's installations (GitHub App forges only); their accounts are remembered."""
        if self._integration is None or self._app is None:
            return []
        integration = self._integration
        found = self._app_call(
            "list the GitHub App's installations",
            lambda: [
                Installation(
                    int(i.id),
                    str(i.account.login if i.account else ""),
                    str(i.repository_selection or ""),
                )
                for _, i in zip(range(1000), integration.get_installations(), strict=False)
            ],
        )
        self._app.tokens.record([(i.id, i.account) for i in found])
        return list(found)

    # -- reading ----------------------------------------------------------------------------

    def get_project(self, project: str) -> RemoteProject:
        _, _, data = self._send(
            f"read repository {project}", "GET", self._repo(project), project=project
        )
        return RemoteProject(
            id=str(data["id"]),
            path=data["full_name"],
            default_branch=data.get("default_branch") or "main",
            web_url=data.get("html_url") or "",
            public=data.get("private") is False,
        )

    def change_ref(self, number: int) -> str:
        return f"refs/pull/{number}/head"

    def whoami(self) -> str:
        if self._integration is not None:  # an App acts as <slug>[bot]
            integration = self._integration
            app = self._app_call("read the GitHub App", integration.get_app)
            return f"{app.slug}[bot]" if app.slug else ""
        _, _, data = self._send("read the token's account", "GET", "/user", project=None)
        return str((data or {}).get("login", ""))

    def get_change(self, project: str, number: int) -> RemoteChange:
        _, _, pr = self._send(
            f"read pull request #{number} of {project}",
            "GET",
            f"{self._repo(project)}/pulls/{checked_id(number)}",
            project=project,
        )
        return RemoteChange(
            number=number,
            url=pr.get("html_url") or "",
            title=pr.get("title") or "",
            author=(pr.get("user") or {}).get("login", ""),
            source_branch=pr["head"]["ref"],
            target_branch=pr["base"]["ref"],
            head_sha=pr["head"]["sha"],
            from_fork=(pr["head"].get("repo") or {}).get("full_name")
            != (pr["base"].get("repo") or {}).get("full_name"),
            state=pr.get("state") or "",
            open=pr.get("state") == "open",
        )

    def changed_files(self, project: str, number: int) -> list[str]:
        files: set[str] = set()
        for page in range(1, 31):  # GitHub lists at most 3,000 files
            _, _, data = self._send(
                f"list the files of #{number} in {project}",
                "GET",
                f"{self._repo(project)}/pulls/{checked_id(number)}/files",
                params={"per_page": 100, "page": page},
                project=project,
            )
            for item in data or []:
                files.update(p for p in (item.get("filename"), item.get("previous_filename")) if p)
            if not data or len(data) < 100:
                break
        return sorted(files)

    def public_email(self, username: str) -> str | None:
        try:
            _, _, data = self._send(
                f"read user {username}", "GET", f"/users/{checked_username(username)}", project=None
            )
        except ForgeError as exc:
            if exc.status_code == 404:
                return None
            raise
        return (data or {}).get("email") or None

    def can_write(self, project: str, username: str) -> bool:
        try:
            _, _, data = self._send(
                f"read {username}'s access to {project}",
                "GET",
                f"{self._repo(project)}/collaborators/{checked_username(username)}/permission",
                project=project,
            )
        except ForgeError as exc:
            if exc.status_code == 404:
                return False
            raise
        return (data or {}).get("permission") in ("admin", "maintain", "write")

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        try:
            _, _, data = self._send(
                f"read {path} at {ref[:12]} in {project}",
                "GET",
                f"{self._repo(project)}/contents/{quoted_file_path(path)}",
                params={"ref": checked_ref(ref)},
                project=project,
            )
        except ForgeError as exc:
            if exc.status_code == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("type", "file") != "file":
            return None
        return base64.b64decode(data.get("content") or "").decode("utf-8", errors="replace")

    def workflow_inputs(self, project: str, workflow: str, ref: str) -> list[str]:
        """The inputs a workflow declares under `on.workflow_dispatch.inputs`, in order
        (remembered for a minute per repository, workflow and ref: a fan-out reads it once)."""
        return caching.remembered(
            caching.key("workflow-inputs", self._who, project, workflow, ref),
            INPUTS_CACHE_SECONDS,
            lambda: self._read_workflow_inputs(project, workflow, ref),
        )

    def _read_workflow_inputs(self, project: str, workflow: str, ref: str) -> list[str]:
        path = workflow if "/" in workflow else f".github/workflows/{workflow}"
        text = self.read_file(project, path, ref)
        if text is None:
            raise ForgeError(
                f"workflow {workflow} not found in {project} at {ref}",
                permanent=True,
                status_code=404,
            )
        try:
            limits.check_size(text, f"workflow {workflow}")
            document = yaml.load(text, Loader=limits.BoundedLoader) or {}  # type: ignore[arg-type]  # noqa: S506 - safe
        except limits.LimitError as exc:
            raise ForgeError(f"workflow {workflow} in {project}: {exc}", permanent=True) from None
        except yaml.YAMLError:
            raise ForgeError(
                f"workflow {workflow} in {project} is not valid YAML", permanent=True
            ) from None
        triggers = document.get("on", document.get(True)) if isinstance(document, dict) else None
        dispatch = triggers.get("workflow_dispatch") if isinstance(triggers, dict) else None
        inputs = dispatch.get("inputs") if isinstance(dispatch, dict) else None
        return [str(name) for name in inputs] if isinstance(inputs, dict) else []

    # -- triggering -------------------------------------------------------------------------

    def create_pipeline(
        self,
        project: str,
        ref: str,
        variables: dict[str, str],
        *,
        workflow: str | None = None,
        deploy: str | None = None,
    ) -> RemotePipeline:
        checked_ref(ref)
        if deploy:
            return self._deploy(project, ref, variables, deploy)
        if workflow:
            return self._dispatch_workflow(project, ref, variables, workflow)
        return self._dispatch_repository(project, variables)

    def _dispatch_workflow(
        self, project: str, ref: str, variables: dict[str, str], workflow: str
    ) -> RemotePipeline:
        declared = self.workflow_inputs(project, workflow, ref)
        inputs = {name: variables[name] for name in declared if name in variables}
        inputs = dict(list(inputs.items())[:MAX_INPUTS])
        # The nonce is Baton's own marker, not a variable a workflow is expected to take.
        undelivered = tuple(sorted(set(variables) - set(inputs) - {"BATON_RUN_NONCE"}))
        path = f"{self._repo(project)}/actions/workflows/{self._workflow(workflow)}/dispatches"
        action = f"dispatch {workflow} on {ref} in {project}"
        if self._return_run_details:
            try:
                _, _, data = self._send(
                    action,
                    "POST",
                    path,
                    creates=True,
                    body={"ref": ref, "inputs": inputs, "return_run_details": True},
                    project=project,
                )
            except ForgeError as exc:
                if exc.status_code != 422 or "return_run_details" not in exc.message:
                    raise
                self._return_run_details = False  # an older server: correlate by marker
            else:
                if isinstance(data, dict) and data.get("workflow_run_id"):
                    return RemotePipeline(
                        id=str(data["workflow_run_id"]),
                        status=Status.PENDING,
                        web_url=data.get("html_url") or "",
                        undelivered=undelivered,
                    )
        if "BATON_RUN_NONCE" not in inputs:
            raise ForgeError(
                f"{action}: GitHub does not say which run it started, so Baton finds the run by "
                "its BATON_RUN_NONCE: declare a workflow_dispatch input BATON_RUN_NONCE and show "
                "it in the workflow's run-name",
                permanent=True,
            )
        self._send(
            action, "POST", path, creates=True, body={"ref": ref, "inputs": inputs}, project=project
        )
        return RemotePipeline(id="", status=Status.PENDING, web_url="", undelivered=undelivered)

    def _deploy(
        self, project: str, ref: str, variables: dict[str, str], environment: str
    ) -> RemotePipeline:
        """A deployment through the Deployments API; the workflows `on: deployment` run it and
        show the BATON_RUN_NONCE of the payload in their run-name."""
        payload = _marked_payload(variables)
        body = {
            "ref": ref,
            "environment": environment,
            "payload": payload,
            "auto_merge": False,
            "required_contexts": [],
            "description": "Baton",
        }
        self._send(
            f"deploy {ref} of {project} to {environment}",
            "POST",
            f"{self._repo(project)}/deployments",
            body=body,
            creates=True,
            project=project,
        )
        return RemotePipeline(id="", status=Status.PENDING, web_url="")

    def _dispatch_repository(self, project: str, variables: dict[str, str]) -> RemotePipeline:
        payload = _marked_payload(variables)
        body = {"event_type": DISPATCH_EVENT_TYPE, "client_payload": payload}
        if len(json.dumps(payload).encode()) >= MAX_PAYLOAD_BYTES:
            raise ForgeError(
                f"repository dispatch to {project}: the variables exceed GitHub's 64 KB "
                "client_payload limit",
                permanent=True,
            )
        self._send(
            f"repository dispatch to {project}",
            "POST",
            f"{self._repo(project)}/dispatches",
            body=body,
            creates=True,
            project=project,
        )
        return RemotePipeline(id="", status=Status.PENDING, web_url="")

    def create_change_pipeline(
        self, project: str, number: int, variables: dict[str, str]
    ) -> RemotePipeline:
        # GitHub dispatches workflows on branches and tags only; `self` runs on the PR's branch.
        raise ForgeError(
            f"GitHub runs no workflow on {self.change_ref(number)} of {project}: give the "
            "`project: self` target a branch `ref:`",
            permanent=True,
        )

    def find_pipeline(
        self,
        project: str,
        ref: str,
        marker: tuple[str, str],
        created_after: datetime,
        *,
        workflow: str | None = None,
    ) -> RemotePipeline | None:
        _, value = marker
        path = (
            f"{self._repo(project)}/actions/workflows/{self._workflow(workflow)}/runs"
            if workflow
            else f"{self._repo(project)}/actions/runs"
        )
        params = {
            "created": f">={created_after.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "per_page": 100,
        }
        _, _, data = self._send(
            f"list runs in {project}", "GET", path, params=params, project=project
        )
        for run in (data or {}).get("workflow_runs", []):
            text = f"{run.get('display_title') or ''} {run.get('name') or ''}"
            if marker_in(text, value):
                return self._pipeline(run)
        return None

    def _pipeline(self, run: dict[str, Any]) -> RemotePipeline:
        return RemotePipeline(
            id=str(run["id"]),
            status=run_status(run.get("status") or "", run.get("conclusion")),
            web_url=run.get("html_url") or "",
            started_at=parse_time(run.get("run_started_at")),
            finished_at=parse_time(run.get("updated_at"))
            if run.get("status") == "completed"
            else None,
            created_at=parse_time(run.get("created_at")),
        )

    def get_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline:
        """A conditional GET: an unchanged run costs a 304, which GitHub does not count."""
        path = f"{self._repo(project)}/actions/runs/{checked_id(pipeline_id)}"
        data = self._conditional_get(f"read run {pipeline_id} in {project}", path, None, project)
        return self._pipeline(data)

    def changed_pipelines(
        self, project: str, *, updated_after: datetime, created_after: datetime
    ) -> PipelineListing:
        # GitHub cannot filter runs on when they changed: the runs created since the oldest open
        # one was sent, asked with the last answer's ETag (a 304 when none changed, not counted
        # against the rate limit: docs.github.com/en/rest/using-the-rest-api/
        # best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).
        params = {
            "created": f">={created_after.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "per_page": 100,
            "exclude_pull_requests": "true",
        }
        data = self._conditional_get(
            f"list runs in {project}", f"{self._repo(project)}/actions/runs", params, project
        )
        runs = (data or {}).get("workflow_runs", []) if isinstance(data, dict) else []
        total = (data or {}).get("total_count", len(runs)) if isinstance(data, dict) else 0
        listed = tuple(self._pipeline(run) for run in runs)
        return PipelineListing(listed, complete=not isinstance(total, int) or total <= len(runs))

    def _conditional_get(
        self, action: str, path: str, params: dict[str, Any] | None, project: str
    ) -> Any:
        """GET with If-None-Match from the last answer to the same question (kept in this
        process, up to 2,000 questions): a 304 answers with what that answer said."""
        key = path + (
            "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())) if params else ""
        )
        with self._lock:
            cached = self._etags.get(key)
        headers = {"If-None-Match": cached[0]} if cached else None
        status, response_headers, data = self._send(
            action, "GET", path, params=params, headers=headers, project=project
        )
        if status == 304 and cached:
            return cached[1]
        if response_headers.get("etag"):
            with self._lock:
                self._etags[key] = (response_headers["etag"], data)
                self._etags.move_to_end(key)
                while len(self._etags) > 2000:
                    self._etags.popitem(last=False)
        return data

    def failed_jobs(self, project: str, pipeline_id: str, *, limit: int) -> list[FailedJob]:
        """One request: the jobs of the run's latest attempt, keeping those that did not pass,
        each with its first failed step; failures and time-outs before cancellations."""
        _, _, data = self._send(
            f"list the jobs of run {pipeline_id} in {project}",
            "GET",
            f"{self._repo(project)}/actions/runs/{checked_id(pipeline_id)}/jobs",
            params={"filter": "latest", "per_page": 100},
            project=project,
        )
        jobs = (data or {}).get("jobs") if isinstance(data, dict) else None
        failed = [
            job
            for job in (jobs if isinstance(jobs, list) else [])
            if isinstance(job, dict) and job.get("conclusion") in FAILED_JOB
        ]
        failed.sort(key=lambda job: FAILED_JOB.index(job["conclusion"]))
        return [
            FailedJob(
                name=str(job.get("name") or ""),
                stage="",
                reason=str(job["conclusion"]),
                url=str(job.get("html_url") or ""),
                step=_failed_step(job.get("steps")),
            )
            for job in failed[:limit]
        ]

    def cancel_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline:
        self._send(
            f"cancel run {pipeline_id} in {project}",
            "POST",
            f"{self._repo(project)}/actions/runs/{checked_id(pipeline_id)}/cancel",
            project=project,
        )
        return self.get_pipeline(project, pipeline_id)

    def recent_pipelines(
        self, project: str, ref: str, *, workflow: str | None = None
    ) -> list[RemotePipeline]:
        path = (
            f"{self._repo(project)}/actions/workflows/{self._workflow(workflow)}/runs"
            if workflow
            else f"{self._repo(project)}/actions/runs"
        )
        _, _, data = self._send(
            f"list runs on {ref} in {project}",
            "GET",
            path,
            params={"branch": ref, "per_page": 20},
            project=project,
        )
        runs = sorted((data or {}).get("workflow_runs", []), key=lambda r: -int(r["id"]))
        return [self._pipeline(run) for run in runs]

    def retry_pipeline(
        self, project: str, pipeline_id: str, *, everything: bool = False
    ) -> RemotePipeline:
        what = "rerun" if everything else "rerun-failed-jobs"
        self._send(
            f"re-run run {pipeline_id} in {project}",
            "POST",
            f"{self._repo(project)}/actions/runs/{checked_id(pipeline_id)}/{what}",
            project=project,
        )
        return RemotePipeline(id=pipeline_id, status=Status.PENDING, web_url="")

    # -- mirroring --------------------------------------------------------------------------

    def commit_state(self, status: Status) -> str:
        if self.app_installation:
            state, conclusion = CHECK_RUN[status]
            return f"{state}/{conclusion or ''}"
        return COMMIT_STATE[status]

    def already_shows(self, shown: str | None, wanted: str) -> bool:
        return shown == wanted  # any state may follow any other on GitHub

    def set_commit_status(
        self,
        project: str,
        sha: str,
        *,
        context: str,
        status: Status,
        description: str,
        target_url: str,
    ) -> None:
        if self.app_installation:
            state, conclusion = CHECK_RUN[status]
            body: dict[str, Any] = {
                "name": context,
                "head_sha": sha,
                "status": state,
                "output": {"title": description[:255] or context, "summary": description},
            }
            if conclusion:
                body["conclusion"] = conclusion
            if target_url:
                body["details_url"] = target_url
            self._send(
                f"set check {context} on {sha[:12]}",
                "POST",
                f"{self._repo(project)}/check-runs",
                body=body,
                project=project,
            )
            return
        body = {"state": COMMIT_STATE[status], "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        self._send(
            f"set status {context} on {sha[:12]}",
            "POST",
            f"{self._repo(project)}/statuses/{checked_sha(sha)}",
            body=body,
            project=project,
        )

    def get_comment(self, project: str, number: int, comment_id: str) -> RemoteComment:
        _, _, data = self._send(
            f"read comment {comment_id} on #{number}",
            "GET",
            f"{self._repo(project)}/issues/comments/{checked_id(comment_id)}",
            project=project,
        )
        if not str(data.get("issue_url") or "").endswith(f"/issues/{checked_id(number)}"):
            raise ForgeError(
                f"comment {comment_id} is not on #{number} in {project}",
                permanent=True,
                status_code=404,
            )
        author = str((data.get("user") or {}).get("login") or "")
        return RemoteComment(author=author, body=data.get("body") or "")

    def upsert_comment(self, project: str, number: int, body: str, comment_id: str | None) -> str:
        if comment_id:
            try:
                self._send(
                    f"edit comment {comment_id} on #{number}",
                    "PATCH",
                    f"{self._repo(project)}/issues/comments/{checked_id(comment_id)}",
                    body={"body": body},
                    project=project,
                )
                return comment_id
            except ForgeError as exc:
                if exc.status_code != 404:
                    raise
        _, _, data = self._send(
            f"comment on #{number}",
            "POST",
            f"{self._repo(project)}/issues/{checked_id(number)}/comments",
            body={"body": body},
            creates=True,
            project=project,
        )
        return str(data["id"])
