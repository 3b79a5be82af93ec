"""The GitHub side's in-memory records (plain dataclasses).

A ``GitHubRepo`` keeps its git data (branches, tags, commits) in a ``Project`` object that is *not*
registered among the GitLab projects, so the commit machinery of ``SandboxState`` is shared while
the two forges' namespaces stay separate (GitLab ``acme/api`` and GitHub ``acme/api`` may coexist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.model import Project, Script, User, now

# GitHub's legacy permission for each repository role (``maintain`` → write, ``triage`` → read).
ROLES = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}
CONCLUSIONS = frozenset({"success", "failure", "cancelled", "skipped", "timed_out", "neutral",
                         "action_required"})


def gh_time(ts: float | None) -> str | None:
    """GitHub timestamp: ``2019-05-15T15:20:32Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PullRequest:
    id: int
    number: int
    head_branch: str
    base_branch: str
    title: str
    body: str
    author: User
    head_sha: str
    base_sha: str
    draft: bool = False
    state: str = "open"  # open | closed
    merged: bool = False
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    closed_at: float | None = None
    merged_at: float | None = None
    merged_by: User | None = None
    merge_commit_sha: str | None = None
    comments: list[IssueComment] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # names, sorted


@dataclass
class IssueComment:
    id: int
    number: int  # the PR (issue) number
    body: str
    author: User
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class GitHubHook:
    id: int
    url: str
    secret: str = ""
    content_type: str = "json"  # json | form
    events: list[str] = field(default_factory=lambda: ["push"])
    active: bool = True
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def wants(self, event: str) -> bool:
        return self.active and ("*" in self.events or event in self.events or event == "ping")


@dataclass
class WorkflowRun:
    id: int
    repo_id: int
    workflow_id: int
    path: str  # .github/workflows/preview.yml
    name: str  # the workflow's name
    display_title: str  # its run-name, rendered
    run_number: int
    event: str
    head_branch: str
    head_sha: str
    actor: User
    check_suite_id: int
    inputs: dict[str, Any] = field(default_factory=dict)
    client_payload: dict[str, Any] | None = None
    deployment_id: int | None = None  # the deployment an ``on: deployment`` run was started by
    run_attempt: int = 1
    status: str = "queued"  # queued | in_progress | completed
    conclusion: str | None = None
    outcome: str = "success"  # the conclusion it will reach
    triggering_actor: User | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    run_started_at: float = field(default_factory=now)
    token: int = 0  # scheduling token of the step this run waits for
    # Its one job (per attempt) as the script describes it (sandbox/jobs.py).
    job_id: int = 0
    job_name: str = "test"
    step: str = "Run tests"
    log: str = ""


@dataclass
class GitHubStatus:
    id: int
    sha: str
    state: str
    context: str
    creator: User
    description: str | None = None
    target_url: str | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class DeploymentStatus:
    id: int
    deployment_id: int
    state: str  # error | failure | inactive | in_progress | queued | pending | success
    creator: User
    environment: str
    description: str = ""
    log_url: str = ""  # ``target_url`` is the same value (GitHub's legacy name)
    environment_url: str = ""
    run_id: int | None = None  # the workflow run that posted it, if any
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Deployment:
    id: int
    sha: str
    ref: str
    task: str
    payload: dict[str, Any] | str
    environment: str
    original_environment: str
    creator: User
    description: str | None = ""
    transient_environment: bool = False
    production_environment: bool = False
    statuses: list[DeploymentStatus] = field(default_factory=list)  # oldest first
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    check_suite_id: int
    status: str = "queued"
    conclusion: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    output: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppToken:
    token: str
    installation_id: int
    app_id: int
    app_slug: str
    bot: User
    created_at: float = field(default_factory=now)
    expires_at: float | None = None  # minted installation tokens expire; registered ones do not


@dataclass
class GitHubRepo:
    id: int
    owner: User
    name: str
    git: Project  # branches, tags, commits (shared commit machinery)
    description: str = ""
    created_at: float = field(default_factory=now)
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    hooks: dict[int, GitHubHook] = field(default_factory=dict)
    statuses: list[GitHubStatus] = field(default_factory=list)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role
    workflow_ids: dict[str, int] = field(default_factory=dict)  # path -> id
    scripts: dict[str | None, Script] = field(default_factory=dict)
    issue_count: int = 0
    run_count: int = 0

    @property
    def full_name(self) -> str:
        return f"{self.owner.username}/{self.name}"

    @property
    def default_branch(self) -> str:
        return self.git.default_branch
