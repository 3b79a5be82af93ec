"""GitLab through python-gitlab: the only module that imports it.

Rate limits and transient errors are not retried here (python-gitlab would sleep inside a worker);
they are raised as ForgeError with retry_after and retried by the task queue.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import gitlab
import requests
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import Project
from requests.utils import get_environ_proxies

from bots import metrics
from bots.events import NONCE_VARIABLE
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
    project_segments,
    quoted_file_path,
)
from bots.forges.gitlab_words import PIPELINE_STATUS, parse_time, pipeline_status  # noqa: F401
from chains import deadline
from chains.status import FINISHED, Status

# Baton status -> GitLab commit status state.
COMMIT_STATE: dict[Status, str] = {
    Status.QUEUED: "pending",
    Status.WAITING: "pending",
    Status.PENDING: "pending",
    Status.RUNNING: "running",
    Status.MANUAL: "pending",
    Status.SUCCESS: "success",
    Status.FAILED: "failed",
    Status.CANCELED: "canceled",
    Status.SKIPPED: "skipped",
}

# GitLab's answer to a commit status that is already in the posted state (or past it).
CANNOT_TRANSITION = "Cannot transition status via"

LISTED = 100  # pipelines per list call when polling (GitLab's largest page)
PERMANENT_CODES = {400, 401, 403, 404, 405, 409, 410, 422}
_MR_REF = re.compile(r"refs/merge-requests/[0-9]+/head")  # where merge request pipelines run
DEVELOPER = 30  # GitLab access level


_last_wait = threading.local()


def _remember_wait(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Response hook: python-gitlab's errors drop headers, so keep Retry-After per thread."""
    _last_wait.seconds = _retry_after(response) if response.status_code == 429 else None


def _retry_after(response: requests.Response) -> float | None:
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            return None
    reset = response.headers.get("RateLimit-Reset")
    if reset and reset.isdigit():
        return max(0.0, int(reset) - datetime.now().timestamp())
    return None


# The repository the current adapter call was asked about: every request under /projects/ must
# name exactly it (checked in _NoSleepGitlab.http_request, right before the request goes out).
_scope: ContextVar[str | None] = ContextVar("gitlab_project_scope", default=None)


@contextmanager
def _translated(
    action: str, *, creates: bool = False, project: str | None = None
) -> Iterator[None]:
    """Turn python-gitlab and requests failures into ForgeError, keeping the forge's words."""
    token = _scope.set(project)
    try:
        yield
    except GitlabError as exc:
        code = exc.response_code
        message = f"{action}: GitLab said {code}: {exc.error_message}"
        if code == 429:
            wait = getattr(_last_wait, "seconds", None)
            raise ForgeError(message, retry_after=wait, status_code=code) from None
        if code in PERMANENT_CODES:
            raise ForgeError(message, permanent=True, status_code=code) from None
        raise ForgeError(message, uncertain=creates, status_code=code) from None
    except requests.RequestException as exc:
        raise ForgeError(
            f"{action}: no answer from GitLab ({type(exc).__name__})", uncertain=creates
        ) from None
    finally:
        _scope.reset(token)


class _Session(requests.Session):
    """requests reads the environment's proxy settings for every request: all of ``os.environ``
    walked twice, 7 % of a worker's CPU in a fan-out. The environment does not change while
    Baton runs: this session reads them once per host (``*_PROXY``, ``NO_PROXY``) and the CA
    bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) once, and applies them as requests does."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # what it would read each time is read here once
        self._proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        found = self._proxies.get(key)
        if found is None:
            found = self._proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        merged = dict(proxies or {})
        for scheme, proxy in found.items():
            merged.setdefault(scheme, proxy)
        if (verify is True or verify is None) and self._ca_bundle:
            verify = self._ca_bundle
        return super().merge_environment_settings(url, merged, stream, verify, cert)


class _NoSleepGitlab(gitlab.Gitlab):
    """python-gitlab sleeps and retries on 429 by default; a worker must not, so it never does."""

    metrics_name = "gitlab"

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        self._assert_scoped(path)
        deadline.check()  # no new request once a dry run's time is up
        kwargs.setdefault("obey_rate_limit", False)
        kwargs.setdefault("retry_transient_errors", False)
        kwargs.setdefault("max_retries", 0)
        started = time.perf_counter()
        try:
            return super().http_request(verb, path, *args, **kwargs)
        except requests.RequestException:  # no answer: the session hook saw nothing
            metrics.forge_call(self.metrics_name, verb, None, time.perf_counter() - started)
            raise

    def _assert_scoped(self, path: str) -> None:
        """The request names exactly the repository the adapter call was asked about."""
        if path.startswith(("http://", "https://")):  # a next-page link the forge gave
            if not path.startswith(self._url + "/"):
                raise ForgeError(f"refused request to {path[:120]!r}: not this forge's API")
            path = path[len(self._url) :]
            assert_names_repository(path, "/nothing", None, joined=True)  # no dot segments
            bare = unquote(path.split("?", 1)[0])
            scope = _scope.get()
            # The forge may spell the project as a numeric id or with plain slashes.
            if bare.startswith("/projects/") and (
                bare.split("/")[2].isdigit()
                or (scope is not None and bare.startswith(f"/projects/{scope}/"))
            ):
                return
        assert_names_repository(path, "/projects", _scope.get(), joined=True)


# Lazy project objects a client keeps (``GitLabForge._project``), the least recently used let
# go first: ~32 KB each (their managers), so at most ~33 MB a client.
PROJECTS_KEPT = 1024


class GitLabForge:
    kind = "gitlab"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float,
        session: requests.Session | None = None,
        name: str = kind,
        connections: int = 32,
    ):
        self.name = name  # the forge's slug, for the metrics' labels
        self._who = hashlib.sha256(f"{url}|{token}".encode()).hexdigest()[:16]
        session = session or _Session()
        session.hooks["response"].append(_remember_wait)
        session.hooks["response"].append(metrics.forge_response_hook(name))
        # As many kept connections as calls the worker makes side by side (bots/engine/sending.py).
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._gl = _NoSleepGitlab(
            url, private_token=token, timeout=timeout, session=session, keep_base_url=True
        )
        self._gl.metrics_name = name
        self._username: str | None = None  # the token's account, once asked
        self._projects: OrderedDict[str, Project] = OrderedDict()  # by path (``_project``)
        self._projects_lock = threading.Lock()

    def budgets(self, action: str, project: str, ref: str = "") -> list[Budget]:
        # GitLab.com: at most 25 pipeline creations a minute per project, commit and user.
        if action == "create":
            return [Budget(f"gitlab:{self._who}:create:{project}@{ref}", per_minute=25)]
        return []

    def _project(self, project: str) -> Project:
        """The project's lazy python-gitlab object (no request), kept by this client: making one
        makes its ~60 managers, 0.35 ms of CPU that every call paid. The objects are only read
        (each call builds its own request and answer objects), so threads share them."""
        with self._projects_lock:
            kept = self._projects.get(project)
            if kept is not None:
                self._projects.move_to_end(project)
                return kept
        project_segments(project)  # refused unless every segment is a plain name
        kept = self._gl.projects.get(project, lazy=True)
        with self._projects_lock:
            self._projects[project] = kept
            while len(self._projects) > PROJECTS_KEPT:
                self._projects.popitem(last=False)
        return kept

    def _call(
        self,
        action: str,
        fn: Callable[[], Any],
        *,
        creates: bool = False,
        project: str | None = None,
    ) -> Any:
        with _translated(action, creates=creates, project=project):
            return fn()

    def get_project(self, project: str) -> RemoteProject:
        data = self._call(
            f"read project {project}", lambda: self._gl.projects.get(project), project=project
        )
        return RemoteProject(
            id=str(data.id),
            path=data.path_with_namespace,
            default_branch=data.default_branch or "main",
            web_url=data.web_url,
            public=getattr(data, "visibility", "private") == "public",
        )

    def change_ref(self, number: int) -> str:
        return f"refs/merge-requests/{number}/head"

    def whoami(self) -> str:
        def current_user() -> str:
            self._gl.auth()
            return str(self._gl.user.username) if self._gl.user else ""

        return str(self._call("read the token's account", current_user))

    def get_change(self, project: str, number: int) -> RemoteChange:
        mr = self._call(
            f"read merge request !{number} of {project}",
            lambda: self._project(project).mergerequests.get(number),
            project=project,
        )
        return RemoteChange(
            number=number,
            url=mr.web_url,
            title=mr.title,
            author=(mr.author or {}).get("username", ""),
            source_branch=mr.source_branch,
            target_branch=mr.target_branch,
            head_sha=mr.sha,
            from_fork=mr.source_project_id != mr.target_project_id,
            state=mr.state,
            open=mr.state == "opened",
            child_ref=self.change_ref(number),  # `self`: a merge request pipeline
        )

    def changed_files(self, project: str, number: int) -> list[str]:
        project_segments(project)
        path = f"/projects/{quote(project, safe='')}/merge_requests/{checked_id(number)}/diffs"
        diffs = self._call(
            f"list the changes of !{number} in {project}",
            lambda: self._gl.http_list(path, get_all=True),
            project=project,
        )
        return sorted({p for d in diffs for p in (d.get("old_path"), d.get("new_path")) if p})

    def public_email(self, username: str) -> str | None:
        users = self._call(f"find user {username}", lambda: self._gl.users.list(username=username))
        if not users:
            return None
        user = self._call(f"read user {username}", lambda: self._gl.users.get(users[0].id))
        return getattr(user, "public_email", None) or None

    def can_write(self, project: str, username: str) -> bool:
        users = self._call(
            f"find user {username}", lambda: self._gl.users.list(username=username), project=project
        )
        if not users:
            return False
        try:
            with _translated(f"read {username}'s access to {project}", project=project):
                member = self._project(project).members_all.get(users[0].id)
        except ForgeError as exc:
            if exc.status_code == 404:
                return False
            raise
        return int(member.access_level) >= DEVELOPER

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        quoted_file_path(path)
        checked_ref(ref)
        try:
            with _translated(f"read {path} at {ref[:12]} in {project}", project=project):
                raw = self._project(project).files.raw(file_path=path, ref=ref)
        except ForgeError as exc:
            if exc.status_code == 404:
                return None
            raise
        return bytes(raw).decode("utf-8", errors="replace")

    def _pipeline(self, data: Any) -> RemotePipeline:
        attrs = data if isinstance(data, dict) else data.attributes
        return RemotePipeline(
            id=str(attrs["id"]),
            status=pipeline_status(attrs.get("status", "")),
            web_url=attrs.get("web_url") or "",
            started_at=parse_time(attrs.get("started_at")),
            finished_at=parse_time(attrs.get("finished_at")),
            created_at=parse_time(attrs.get("created_at")),
        )

    def create_pipeline(
        self,
        project: str,
        ref: str,
        variables: dict[str, str],
        *,
        workflow: str | None = None,
        deploy: str | None = None,  # GitLab: BATON_DEPLOY_ENVIRONMENT among the variables
    ) -> RemotePipeline:
        payload = {
            "ref": checked_ref(ref),
            "variables": [{"key": k, "value": v} for k, v in variables.items()],
        }
        created = self._call(
            f"create a pipeline on {ref} in {project}",
            lambda: self._project(project).pipelines.create(payload),
            creates=True,
            project=project,
        )
        return self._pipeline(created)

    def create_change_pipeline(
        self, project: str, number: int, variables: dict[str, str]
    ) -> RemotePipeline:
        """A merge request pipeline: GitLab runs it in the target project on
        refs/merge-requests/<iid>/head, fork MRs included. The endpoint takes no variables (the
        pipeline has GitLab's CI_MERGE_REQUEST_* instead), so none is delivered."""
        mr = self._project(project).mergerequests.get(int(checked_id(number)), lazy=True)
        created = self._call(
            f"create a merge request pipeline for !{number} in {project}",
            mr.pipelines.create,
            creates=True,
            project=project,
        )
        undelivered = tuple(sorted(set(variables) - {NONCE_VARIABLE}))
        return dataclasses.replace(self._pipeline(created), undelivered=undelivered)

    def _bot_username(self) -> str:
        if self._username is None:
            self._username = self.whoami()
        return self._username

    def find_pipeline(
        self,
        project: str,
        ref: str,
        marker: tuple[str, str],
        created_after: datetime,
        *,
        workflow: str | None = None,
    ) -> RemotePipeline | None:
        key, value = marker
        if _MR_REF.fullmatch(ref):
            return self._find_change_pipeline(project, ref, created_after)
        proj = self._project(project)
        candidates = self._call(
            f"list pipelines on {ref} in {project}",
            lambda: proj.pipelines.list(
                ref=ref,
                created_after=created_after.isoformat(),
                order_by="id",
                sort="desc",
                per_page=100,
                get_all=False,
            ),
            project=project,
        )
        for pipeline in candidates:
            variables = self._call(
                f"read variables of pipeline {pipeline.id}",
                functools.partial(pipeline.variables.list, get_all=True),
                project=project,
            )
            if any(v.key == key and v.value == value for v in variables):
                return self._pipeline(pipeline)
        return None

    def _find_change_pipeline(
        self, project: str, ref: str, created_after: datetime
    ) -> RemotePipeline | None:
        """A merge request pipeline carries no variables, so no marker: the first one on the
        MR's ref created by this token's account after the time."""
        username = self._bot_username()
        candidates = self._call(
            f"list pipelines on {ref} in {project}",
            lambda: self._project(project).pipelines.list(
                ref=ref,
                source="merge_request_event",
                username=username,
                created_after=created_after.isoformat(),
                order_by="id",
                sort="asc",
                per_page=1,
                get_all=False,
            ),
            project=project,
        )
        return self._pipeline(candidates[0]) if candidates else None

    def get_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline:
        data = self._call(
            f"read pipeline {pipeline_id} in {project}",
            lambda: self._project(project).pipelines.get(int(checked_id(pipeline_id))),
            project=project,
        )
        return self._pipeline(data)

    def failed_jobs(self, project: str, pipeline_id: str, *, limit: int) -> list[FailedJob]:
        """One request: the pipeline's failed jobs (``scope=failed``; retried ones left out),
        those that fail the pipeline (not ``allow_failure``) first."""
        pipeline = self._project(project).pipelines.get(int(checked_id(pipeline_id)), lazy=True)
        items = self._call(
            f"list the failed jobs of pipeline {pipeline_id} in {project}",
            lambda: pipeline.jobs.list(
                scope="failed", per_page=max(1, min(limit, 100)), get_all=False
            ),
            project=project,
        )
        jobs = sorted(
            (item.attributes for item in items),
            key=lambda job: bool(job.get("allow_failure")),
        )
        return [
            FailedJob(
                name=str(job.get("name") or ""),
                stage=str(job.get("stage") or ""),
                reason=str(job.get("failure_reason") or "unknown_failure"),
                url=str(job.get("web_url") or ""),
            )
            for job in jobs[:limit]
        ]

    def changed_pipelines(
        self, project: str, *, updated_after: datetime, created_after: datetime
    ) -> PipelineListing:
        # GitLab filters on the time a pipeline last changed: an answer with nothing in it says
        # every open run stands where it stood
        # (docs.gitlab.com/api/pipelines/#list-project-pipelines, updated_after).
        items = self._call(
            f"list pipelines updated in {project}",
            lambda: self._project(project).pipelines.list(
                updated_after=updated_after.isoformat(),
                order_by="updated_at",
                sort="desc",
                per_page=LISTED,
                get_all=False,
            ),
            project=project,
        )
        found = []
        for item in items:
            pipeline = self._pipeline(item)
            if pipeline.finished_at is None and pipeline.status in FINISHED:
                # The list shows no finish time; a finished pipeline last changed when it ended.
                ended = parse_time(item.attributes.get("updated_at"))
                pipeline = dataclasses.replace(pipeline, finished_at=ended)
            found.append(pipeline)
        return PipelineListing(tuple(found), complete=len(found) < LISTED)

    def cancel_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline:
        pipeline = self._project(project).pipelines.get(int(checked_id(pipeline_id)), lazy=True)
        data = self._call(
            f"cancel pipeline {pipeline_id} in {project}", pipeline.cancel, project=project
        )
        return self._pipeline(data)

    def recent_pipelines(
        self, project: str, ref: str, *, workflow: str | None = None
    ) -> list[RemotePipeline]:
        items = self._call(
            f"list pipelines on {ref} in {project}",
            lambda: self._project(project).pipelines.list(
                ref=ref, order_by="id", sort="desc", per_page=20, get_all=False
            ),
            project=project,
        )
        return [self._pipeline(item) for item in items]

    def retry_pipeline(
        self, project: str, pipeline_id: str, *, everything: bool = False
    ) -> RemotePipeline:
        # GitLab retries the failed and canceled jobs of a pipeline; there is no more to ask for.
        pipeline = self._project(project).pipelines.get(int(checked_id(pipeline_id)), lazy=True)
        data = self._call(
            f"retry pipeline {pipeline_id} in {project}", pipeline.retry, project=project
        )
        return self._pipeline(data)

    def commit_state(self, status: Status) -> str:
        return COMMIT_STATE[status]

    def already_shows(self, shown: str | None, wanted: str) -> bool:
        # A commit status is a state machine (GL app/models/commit_status.rb): running cannot
        # go back to pending ("Cannot transition status via :enqueue from :running"), so a
        # chain waiting on its next run keeps showing running until it ends.
        return shown == wanted or (shown == "running" and wanted == "pending")

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
        body = {
            "state": COMMIT_STATE[status],
            "name": context,
            "description": description[:255],
        }
        if target_url:
            body["target_url"] = target_url
        commit = self._project(project).commits.get(checked_sha(sha), lazy=True)
        try:
            self._call(
                f"set status {context} on {sha[:12]}",
                lambda: commit.statuses.create(body),
                project=project,
            )
        except ForgeError as exc:
            # A commit status is a state machine on GitLab: posting the state it is already in
            # (pending again, running again) answers 400 "Cannot transition status via :enqueue
            # from :pending". The status already says what we meant to say.
            if exc.status_code == 400 and CANNOT_TRANSITION in exc.message:
                return
            raise

    def get_comment(self, project: str, number: int, comment_id: str) -> RemoteComment:
        mr = self._project(project).mergerequests.get(int(checked_id(number)), lazy=True)
        note = self._call(
            f"read note {comment_id} on !{number}",
            lambda: mr.notes.get(int(checked_id(comment_id))),
            project=project,
        )
        author = getattr(note, "author", None) or {}
        return RemoteComment(author=str(author.get("username") or ""), body=note.body or "")

    def upsert_comment(self, project: str, number: int, body: str, comment_id: str | None) -> str:
        mr = self._project(project).mergerequests.get(number, lazy=True)
        if comment_id:
            note = mr.notes.get(int(checked_id(comment_id)), lazy=True)
            note.body = body
            try:
                self._call(f"edit note {comment_id} on !{number}", note.save, project=project)
                return comment_id
            except ForgeError as exc:
                if exc.status_code != 404:
                    raise
        created = self._call(
            f"comment on !{number}", lambda: mr.notes.create({"body": body}), project=project
        )
        return str(created.id)
