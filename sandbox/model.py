"""The sandbox forge's in-memory records (plain dataclasses, no behaviour beyond small helpers)."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FINISHED = frozenset({"success", "failed", "canceled", "skipped"})
ACTIVE = frozenset({"created", "waiting_for_resource", "preparing", "pending", "running"})
PIPELINE_STATUSES = FINISHED | ACTIVE | {"manual", "scheduled", "canceling"}
ZERO_SHA = "0" * 40

# Never reset: a scheduled step remembers the token it was planned under, so steps planned before a
# reset, cancel or retry can tell they are stale.
_tokens = itertools.count(1)


def next_token() -> int:
    return next(_tokens)


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    """REST timestamp: ``2016-11-04T09:36:13.747Z``."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def hook_time(ts: float | None) -> str | None:
    """Webhook timestamp: ``2026-01-16 05:56:25 UTC``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def offset_time(ts: float) -> str:
    """Commit timestamp: ``2026-01-16T05:01:10+00:00``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def make_sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


@dataclass
class User:
    id: int
    username: str
    name: str
    public_email: str = ""  # shown to others only when the user set one (control API)

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


@dataclass
class Commit:
    sha: str
    files: dict[str, str]
    message: str
    author: User
    created_at: float
    parent: str | None = None

    @property
    def title(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass
class Label:
    """A project's (GitLab) or repository's (GitHub) label, created on first use."""

    id: int
    name: str
    color: str  # "#rrggbb"
    description: str = ""
    created_at: float = field(default_factory=now)


@dataclass
class Hook:
    id: int
    project_id: int
    url: str
    token: str = ""
    push_events: bool = True
    tag_push_events: bool = False
    merge_requests_events: bool = False
    note_events: bool = False
    pipeline_events: bool = False
    job_events: bool = False
    enable_ssl_verification: bool = True
    created_at: float = field(default_factory=now)
    # GitLab's auto-disabling (see sandbox/webhooks.py): consecutive failed deliveries, until when
    # the hook is temporarily disabled, and whether it is disabled for good.
    recent_failures: int = 0
    disabled_until: float | None = None
    permanently_disabled: bool = False

    @property
    def alert_status(self) -> str:
        if self.permanently_disabled:
            return "disabled"
        if self.disabled_until is not None and self.disabled_until > now():
            return "temporarily_disabled"
        return "executable"

    EVENT_FLAGS = (
        "push_events",
        "tag_push_events",
        "merge_requests_events",
        "note_events",
        "pipeline_events",
        "job_events",
        "enable_ssl_verification",
    )


@dataclass
class Trigger:
    id: int
    project_id: int
    token: str
    description: str
    owner: User
    created_at: float = field(default_factory=now)
    last_used: float | None = None


@dataclass
class Note:
    id: int
    project_id: int
    mr_iid: int
    body: str
    author: User
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    system: bool = False


@dataclass
class MergeRequest:
    id: int
    iid: int
    project_id: int
    source_project_id: int
    source_branch: str
    target_branch: str
    title: str
    description: str
    author: User
    sha: str
    base_sha: str
    state: str = "opened"
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    merged_at: float | None = None
    closed_at: float | None = None
    merged_by: User | None = None
    closed_by: User | None = None
    merge_commit_sha: str | None = None
    notes: list[Note] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # names, sorted

    STATE_IDS = {"opened": 1, "closed": 2, "merged": 3, "locked": 4}

    @property
    def head_ref(self) -> str:
        return f"refs/merge-requests/{self.iid}/head"


@dataclass
class CommitStatus:
    id: int
    project_id: int
    sha: str
    name: str
    status: str
    author: User
    target_url: str | None = None
    description: str | None = None
    ref: str | None = None
    coverage: float | None = None
    pipeline_id: int | None = None
    created_at: float = field(default_factory=now)
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class Script:
    """How one project's (optionally one ref's) pipelines behave; durations in simulated seconds."""

    outcome: str = "success"
    created: float = 0.1
    pending: float = 0.5
    running: float = 3.0
    ref: str | None = None
    queue: deque[str] = field(default_factory=deque)
    # What a failing job says (sandbox/jobs.py): its name and stage, GitLab's failure_reason,
    # GitHub's failing step, and the log tail its page shows ("" → a few default lines).
    job: str = "test"
    stage: str = "test"
    failure_reason: str = "script_failure"
    step: str = "Run tests"
    log: str = ""

    def next_outcome(self) -> str:
        return self.queue.popleft() if self.queue else self.outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "created": self.created,
            "pending": self.pending,
            "running": self.running,
            "ref": self.ref,
            "queue": list(self.queue),
            "job": self.job,
            "stage": self.stage,
            "failure_reason": self.failure_reason,
            "step": self.step,
            "log": self.log,
        }


@dataclass
class Job:
    id: int
    name: str = "test"
    stage: str = "test"
    status: str = "created"
    failure_reason: str = "script_failure"  # shown while it is failed (GitLab's word)
    log: str = ""  # the log tail its page shows ("" → default lines)
    created_at: float = field(default_factory=now)
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class Pipeline:
    id: int
    iid: int
    project_id: int
    sha: str
    ref: str
    source: str
    user: User
    job: Job
    variables: list[dict[str, str]] = field(default_factory=list)
    mr_iid: int | None = None
    tag: bool = False
    status: str = "created"
    outcome: str = "success"
    retried_jobs: tuple[Job, ...] = ()  # earlier attempts of the job, oldest first
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    started_at: float | None = None
    finished_at: float | None = None
    token: int = 0  # the scheduling token of the step this pipeline waits for

    @property
    def duration(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at)

    @property
    def queued_duration(self) -> float | None:
        end = self.started_at if self.started_at is not None else None
        if end is None:
            return None
        return round(end - self.created_at, 3)


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str
    web_url: str
    description: str = ""
    created_at: float = field(default_factory=now)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    merge_requests: dict[int, MergeRequest] = field(default_factory=dict)
    hooks: dict[int, Hook] = field(default_factory=dict)
    triggers: dict[int, Trigger] = field(default_factory=dict)
    statuses: list[CommitStatus] = field(default_factory=list)  # oldest first
    scripts: dict[str | None, Script] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)  # name -> label
    pipeline_count: int = 0
    mr_count: int = 0

    @property
    def path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0] if "/" in self.path_with_namespace else ""

    @property
    def name(self) -> str:
        return self.path.replace("-", " ").replace("_", " ").title()

    @property
    def head_sha(self) -> str | None:
        return self.branches.get(self.default_branch)
