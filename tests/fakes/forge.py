"""A forge in memory that implements the Forge protocol (bots/forges/base.py) for engine tests.

It records every call, answers from what a test put in it (projects, files, changes, pipelines,
permissions) and raises the faults a test scripts, in order, per method:

    fake.fail("create_pipeline", transient("502"))          # raised instead of acting
    fake.fail("create_pipeline", uncertain("timeout"), after_effect=True)  # acts, then raises
    fake.fail("get_pipeline", rate_limited(30))             # a 429 with Retry-After: 30

`install(monkeypatch, fake)` puts it behind `bots.forges.registry.forge_for`, so every engine
module that asks the registry for a client gets it.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.utils import timezone

from bots.forges.base import (
    Budget,
    FailedJob,
    ForgeError,
    PipelineListing,
    RemoteChange,
    RemoteComment,
    RemotePipeline,
    RemoteProject,
)
from chains.status import FINISHED, Status

# -- scripted faults ---------------------------------------------------------------------------


def permanent(message: str = "404 Not Found", status_code: int = 404) -> ForgeError:
    return ForgeError(message, permanent=True, status_code=status_code)


def transient(message: str = "502 Bad Gateway", status_code: int = 502) -> ForgeError:
    return ForgeError(message, status_code=status_code)


def uncertain(message: str = "timed out; the forge may have acted") -> ForgeError:
    return ForgeError(message, uncertain=True)


def rate_limited(retry_after: float = 30.0) -> ForgeError:
    return ForgeError("429 Too Many Requests", retry_after=retry_after, status_code=429)


@dataclass
class Fault:
    error: BaseException  # a ForgeError, or what a worker may see (a time limit)
    after_effect: bool = False  # the forge acted before the error reached us


@dataclass
class Call:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class Pipeline:
    """A pipeline as the fake forge holds it."""

    project: str
    id: str
    ref: str
    variables: dict[str, str]
    status: Status = Status.PENDING
    workflow: str | None = None
    deploy: str | None = None
    created_at: datetime = field(default_factory=timezone.now)
    failed_jobs: list[FailedJob] = field(default_factory=list)  # what failed_jobs() answers
    updated_at: datetime = field(default_factory=timezone.now)
    finished_at: datetime | None = None

    def remote(self) -> RemotePipeline:
        return RemotePipeline(
            id=self.id,
            status=self.status,
            web_url=f"https://forge.test/{self.project}/-/pipelines/{self.id}",
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


# GitLab's commit states: two statuses with the same state look the same on the forge.
COMMIT_STATE = {
    Status.QUEUED: "pending",
    Status.WAITING: "pending",
    Status.PENDING: "pending",
    Status.RUNNING: "running",
    Status.MANUAL: "running",
    Status.SUCCESS: "success",
    Status.FAILED: "failed",
    Status.CANCELED: "canceled",
    Status.SKIPPED: "canceled",
}


class FakeForge:
    """Every method of the Forge protocol, in memory."""

    def __init__(self, kind: str = "gitlab") -> None:
        self.kind = kind
        self.calls: list[Call] = []
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.projects: dict[str, RemoteProject] = {}
        self.files: dict[tuple[str, str, str], str] = {}
        self.changes: dict[tuple[str, int], RemoteChange] = {}
        self.changed: dict[tuple[str, int], list[str]] = {}
        self.pipelines: dict[tuple[str, str], Pipeline] = {}
        self.emails: dict[str, str] = {}
        self.writers: set[tuple[str, str]] = set()
        self.statuses: list[dict[str, Any]] = []  # every commit status posted, in order
        self.comments: dict[str, str] = {}  # comment id -> its body now
        self.posted: dict[str, RemoteComment] = {}  # comments people wrote, by id
        self.write_budgets: list[Budget] = []
        self._ids = itertools.count(101)
        self.page = 100  # pipelines per list call (changed_pipelines)

    # -- scripting -----------------------------------------------------------------------------

    def fail(self, method: str, *errors: BaseException, after_effect: bool = False) -> None:
        """The next calls of ``method`` raise these errors, one per call, in order."""
        self.faults[method].extend(Fault(e, after_effect) for e in errors)

    def add_project(
        self, path: str, *, public: bool = False, default_branch: str = "main", id: str = ""
    ) -> RemoteProject:
        project = RemoteProject(
            id=id or str(500 + len(self.projects)),
            path=path,
            default_branch=default_branch,
            web_url=f"https://forge.test/{path}",
            public=public,
        )
        self.projects[path] = project
        return project

    def add_file(self, project: str, path: str, ref: str, text: str) -> None:
        self.files[(project, path, ref)] = text

    def add_change(
        self,
        project: str,
        number: int,
        *,
        author: str = "alice",
        head_sha: str = "a" * 40,
        source_branch: str = "feature",
        target_branch: str = "main",
        from_fork: bool = False,
        state: str = "opened",
        title: str = "A change",
        child_ref: str = "",
    ) -> RemoteChange:
        change = RemoteChange(
            number=number,
            url=f"https://forge.test/{project}/-/merge_requests/{number}",
            title=title,
            author=author,
            source_branch=source_branch,
            target_branch=target_branch,
            head_sha=head_sha,
            from_fork=from_fork,
            state=state,
            open=state == "opened",  # GitLab's word for an open merge request
            child_ref=child_ref,
        )
        self.changes[(project, number)] = change
        return change

    def add_pipeline(
        self,
        project: str,
        ref: str,
        variables: dict[str, str] | None = None,
        *,
        status: Status = Status.RUNNING,
        workflow: str | None = None,
        created_at: datetime | None = None,
    ) -> Pipeline:
        pipeline = Pipeline(
            project=project,
            id=str(next(self._ids)),
            ref=ref,
            variables=dict(variables or {}),
            status=status,
            workflow=workflow,
            created_at=created_at or timezone.now(),
        )
        self.pipelines[(project, pipeline.id)] = pipeline
        return pipeline

    def set_status(
        self, project: str, pipeline_id: str, status: Status, *, finished_at: datetime | None = None
    ) -> None:
        pipeline = self.pipelines[(project, pipeline_id)]
        pipeline.status = status
        pipeline.updated_at = timezone.now()
        if finished_at is not None:
            pipeline.finished_at = finished_at

    # -- what tests read back ------------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def created(self, project: str | None = None) -> list[Pipeline]:
        """Pipelines Baton created (through create_pipeline), oldest first."""
        calls = self.called("create_pipeline") + self.called("create_change_pipeline")
        ids = [c.kwargs["_id"] for c in calls if "_id" in c.kwargs]
        found = [p for p in self.pipelines.values() if p.id in ids]
        return [p for p in found if project is None or p.project == project]

    @property
    def bodies(self) -> list[str]:
        """Every comment body written (created or edited), in order."""
        return [c.args[2] for c in self.called("upsert_comment")]

    def contexts(self) -> list[tuple[str, str]]:
        """(context, forge state) of every commit status posted, in order."""
        return [(s["context"], self.commit_state(s["status"])) for s in self.statuses]

    # -- the protocol --------------------------------------------------------------------------

    def _enter(self, method: str, *args: Any, **kwargs: Any) -> Fault | None:
        call = Call(method, args, kwargs)
        self.calls.append(call)
        queue = self.faults.get(method)
        if not queue:
            return None
        fault = queue.pop(0)
        if not fault.after_effect:
            raise fault.error
        return fault

    def budgets(self, action: str, project: str, ref: str = "") -> list[Budget]:
        return list(self.write_budgets) if action == "write" else []

    def get_change(self, project: str, number: int) -> RemoteChange:
        self._enter("get_change", project, number)
        try:
            return self.changes[(project, number)]
        except KeyError:
            raise permanent(f"404 {project} has no change {number}") from None

    def change_ref(self, number: int) -> str:
        return f"refs/merge-requests/{number}/head"

    def get_project(self, project: str) -> RemoteProject:
        self._enter("get_project", project)
        try:
            return self.projects[project]
        except KeyError:
            raise permanent(f"404 Project {project} Not Found") from None

    def whoami(self) -> str:
        self._enter("whoami")
        return "baton-bot"

    def changed_files(self, project: str, number: int) -> list[str]:
        self._enter("changed_files", project, number)
        return list(self.changed.get((project, number), []))

    def public_email(self, username: str) -> str | None:
        self._enter("public_email", username)
        return self.emails.get(username)

    def can_write(self, project: str, username: str) -> bool:
        self._enter("can_write", project, username)
        return (project, username) in self.writers

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        self._enter("read_file", project, path, ref)
        return self.files.get((project, path, ref))

    def create_pipeline(
        self,
        project: str,
        ref: str,
        variables: dict[str, str],
        *,
        workflow: str | None = None,
        deploy: str | None = None,
    ) -> RemotePipeline:
        call = Call("create_pipeline", (project, ref, dict(variables)), {"workflow": workflow})
        self.calls.append(call)
        queue = self.faults.get("create_pipeline")
        fault = queue.pop(0) if queue else None
        if fault is not None and not fault.after_effect:
            raise fault.error
        if project not in self.projects:
            raise permanent(f"404 Project {project} Not Found")
        pipeline = self.add_pipeline(project, ref, variables, status=Status.PENDING)
        pipeline.workflow, pipeline.deploy = workflow, deploy
        call.kwargs["_id"] = pipeline.id
        if fault is not None:
            raise fault.error  # it reached the forge, and the answer was lost
        return pipeline.remote()

    def create_change_pipeline(
        self, project: str, number: int, variables: dict[str, str]
    ) -> RemotePipeline:
        """Like GitLab's merge request pipeline: on the change's ref, without variables."""
        call = Call("create_change_pipeline", (project, number, dict(variables)), {})
        self.calls.append(call)
        queue = self.faults.get("create_change_pipeline")
        fault = queue.pop(0) if queue else None
        if fault is not None and not fault.after_effect:
            raise fault.error
        if (project, number) not in self.changes:
            raise permanent(f"404 {project} has no change {number}")
        pipeline = self.add_pipeline(project, self.change_ref(number), status=Status.PENDING)
        call.kwargs["_id"] = pipeline.id
        if fault is not None:
            raise fault.error
        undelivered = tuple(sorted(set(variables) - {"BATON_RUN_NONCE"}))
        return replace(pipeline.remote(), undelivered=undelivered)

    def find_pipeline(
        self,
        project: str,
        ref: str,
        marker: tuple[str, str],
        created_after: datetime,
        *,
        workflow: str | None = None,
    ) -> RemotePipeline | None:
        self._enter("find_pipeline", project, ref, marker, created_after, workflow=workflow)
        key, value = marker
        if ref.startswith("refs/merge-requests/"):  # as the GitLab adapter: no variables there
            return next(
                (
                    p.remote()
                    for p in sorted(self.pipelines.values(), key=lambda p: int(p.id))
                    if p.project == project and p.ref == ref and p.created_at >= created_after
                ),
                None,
            )
        for pipeline in sorted(self.pipelines.values(), key=lambda p: -int(p.id)):
            if (
                pipeline.project == project
                and pipeline.ref == ref
                and pipeline.variables.get(key) == value
                and pipeline.created_at >= created_after
            ):
                return pipeline.remote()
        return None

    def get_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline:
        self._enter("get_pipeline", project, pipeline_id)
        try:
            return self.pipelines[(project, pipeline_id)].remote()
        except KeyError:
            raise permanent(f"404 pipeline {pipeline_id} Not Found") from None

    def recent_pipelines(
        self, project: str, ref: str, *, workflow: str | None = None
    ) -> list[RemotePipeline]:
        self._enter("recent_pipelines", project, ref, workflow=workflow)
        mine = [p for p in self.pipelines.values() if p.project == project and p.ref == ref]
        return [p.remote() for p in sorted(mine, key=lambda p: -int(p.id))[:20]]

    def failed_jobs(self, project: str, pipeline_id: str, *, limit: int) -> list[FailedJob]:
        self._enter("failed_jobs", project, pipeline_id, limit=limit)
        try:
            return self.pipelines[(project, pipeline_id)].failed_jobs[:limit]
        except KeyError:
            raise permanent(f"404 pipeline {pipeline_id} Not Found") from None

    def changed_pipelines(
        self, project: str, *, updated_after: datetime, created_after: datetime
    ) -> PipelineListing:
        """GitLab's way: the pipelines of the project updated since then, newest first."""
        self._enter(
            "changed_pipelines", project, updated_after=updated_after, created_after=created_after
        )
        mine = [
            p
            for p in self.pipelines.values()
            if p.project == project and p.updated_at > updated_after
        ]
        mine.sort(key=lambda p: p.updated_at, reverse=True)
        return PipelineListing(
            tuple(p.remote() for p in mine[: self.page]), complete=len(mine) <= self.page
        )

    def cancel_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline:
        self._enter("cancel_pipeline", project, pipeline_id)
        pipeline = self.pipelines[(project, pipeline_id)]
        if pipeline.status not in FINISHED:  # GitLab answers an ended one as it is
            pipeline.status, pipeline.updated_at = Status.CANCELED, timezone.now()
        return pipeline.remote()

    def retry_pipeline(
        self, project: str, pipeline_id: str, *, everything: bool = False
    ) -> RemotePipeline:
        self._enter("retry_pipeline", project, pipeline_id, everything=everything)
        pipeline = self.pipelines[(project, pipeline_id)]
        if self.kind == "gitlab" and pipeline.status not in (Status.FAILED, Status.CANCELED):
            return pipeline.remote()  # GitLab retries only failed and canceled jobs
        pipeline.status, pipeline.updated_at = Status.PENDING, timezone.now()
        return pipeline.remote()

    def commit_state(self, status: Status) -> str:
        return COMMIT_STATE[Status(status)]

    def already_shows(self, shown: str | None, wanted: str) -> bool:
        # As GitLab's state machine: running does not go back to pending.
        going_back = self.kind == "gitlab" and (shown, wanted) == ("running", "pending")
        return shown == wanted or going_back

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
        self._enter("set_commit_status", project, sha, context=context, status=status)
        self.statuses.append(
            {
                "project": project,
                "sha": sha,
                "context": context,
                "status": Status(status),
                "description": description,
                "target_url": target_url,
            }
        )

    def get_comment(self, project: str, number: int, comment_id: str) -> RemoteComment:
        self._enter("get_comment", project, number, comment_id)
        if comment_id not in self.posted:
            raise permanent(f"404 comment {comment_id} Not Found")
        return self.posted[comment_id]

    def upsert_comment(self, project: str, number: int, body: str, comment_id: str | None) -> str:
        self._enter("upsert_comment", project, number, body, comment_id)
        if comment_id is None or comment_id not in self.comments:
            comment_id = str(900 + len(self.comments))
        self.comments[comment_id] = body
        return comment_id


def install(monkeypatch: Any, fake: FakeForge) -> FakeForge:
    """Make `bots.forges.registry.forge_for` hand out ``fake`` for every forge record (modules
    that imported `forge_for` by name get it too: the registry builds no real client)."""
    from bots.forges import registry

    monkeypatch.setattr(registry, "_clients", {})
    monkeypatch.setattr(registry, "_build", lambda record: fake)
    return fake


__all__ = [
    "Call",
    "FakeForge",
    "Fault",
    "Pipeline",
    "install",
    "permanent",
    "rate_limited",
    "transient",
    "uncertain",
]
