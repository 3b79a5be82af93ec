"""The GitHub side's world: repositories, pull requests, issue comments, hooks, statuses, check
runs, deployments (and their statuses), collaborators and GitHub App installation tokens.

It shares ``SandboxState``'s lock, users, ids and commit machinery, and publishes its changes as
``github.*`` events on the same bus (``state.emit``), which the GitHub webhook builder listens to.
GitHub repositories live in their own namespace, apart from the GitLab projects.
"""

from __future__ import annotations

import secrets
from typing import Any

from sandbox.diffs import FileChange
from sandbox.github.model import (
    ROLES,
    AppToken,
    CheckRun,
    Deployment,
    DeploymentStatus,
    GitHubHook,
    GitHubRepo,
    GitHubStatus,
    IssueComment,
    PullRequest,
    WorkflowRun,
)
from sandbox.github.workflows import WorkflowFile, is_workflow_path, parse
from sandbox.model import ZERO_SHA, Commit, Project, User, now
from sandbox.state import Invalid, NotFound, SandboxState, label_names

STATUS_STATES = ("error", "failure", "pending", "success")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
MAX_COMMENT = 65536
MAX_DEPLOYMENT_DESCRIPTION = 140
PASSING_CHECKS = ("success", "neutral", "skipped")


class GitHubState:
    def __init__(self, state: SandboxState) -> None:
        from sandbox.github.apps import GitHubApps

        self.state = state
        self.reset()
        self.app_registry = GitHubApps(self)

    def reset(self) -> None:
        with self.state.lock:
            self.repos: dict[int, GitHubRepo] = {}
            self.app_tokens: dict[str, AppToken] = {}
            self.apps: dict[int, Any] = {}  # id -> github_apps.GitHubApp
            self.installations: dict[int, Any] = {}  # id -> github_apps.Installation
            self.return_run_details = True  # False: dispatch refuses the parameter (older GHES)

    def emit(self, kind: str, repo: GitHubRepo, actor: User, **data: Any) -> None:
        self.state.emit(f"github.{kind}", repo.git, actor, repo=repo, **data)

    # -- repositories --------------------------------------------------------------------------

    def create_repo(self, full_name: str, *, default_branch: str = "main",
                    files: dict[str, str] | None = None, description: str = "") -> GitHubRepo:
        full_name = full_name.strip("/")
        if full_name.count("/") != 1 or not all(full_name.split("/")):
            raise Invalid("full_name must be owner/name")
        if any(r.full_name.lower() == full_name.lower() for r in self.repos.values()):
            raise Invalid(f"repository {full_name} already exists")
        owner_login, name = full_name.split("/")
        rid = self.state.new_id("github_repo")
        git = Project(rid, full_name, default_branch, f"{self.state.base_url}/{full_name}",
                      description=description)
        repo = GitHubRepo(rid, self.state.user(owner_login), name, git, description)
        self.repos[rid] = repo
        self.state.commit(git, default_branch, dict(files or {"README.md": f"# {name}\n"}),
                          "Initial commit", self.state.bot, announce=False)
        return repo

    def repo(self, owner: str, name: str) -> GitHubRepo:
        wanted = f"{owner}/{name}".lower()
        for r in self.repos.values():
            if r.full_name.lower() == wanted:
                return r
        raise NotFound("Not Found")

    def repo_by_name(self, full_name: str) -> GitHubRepo:
        owner, _, name = full_name.strip("/").partition("/")
        return self.repo(owner, name)

    def resolve(self, repo: GitHubRepo, ref: str | None) -> str:
        """Branch, tag, sha, ``refs/heads|tags/…`` or ``refs/pull/N/head|merge`` → sha."""
        ref = ref or repo.default_branch
        if ref.startswith("refs/pull/"):
            parts = ref.split("/")
            if len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) in repo.pulls:
                return repo.pulls[int(parts[2])].head_sha
            raise NotFound("No commit found for the ref")
        try:
            return self.state.resolve(repo.git, ref)
        except NotFound:
            raise NotFound(f"No commit found for the ref {ref}") from None

    def commit_at(self, repo: GitHubRepo, ref: str | None) -> Commit:
        return repo.git.commits[self.resolve(repo, ref)]

    def commit(self, repo: GitHubRepo, branch: str, files: dict[str, str | None], message: str,
               author: User) -> Commit:
        """Commit on ``branch`` as a push would: ``create`` (a new branch) and ``push``."""
        before = repo.git.branches.get(branch, ZERO_SHA)
        commit = self.state.commit(repo.git, branch, files, message, author, announce=False)
        if before == ZERO_SHA:
            self.emit("create", repo, author, ref=branch, ref_type="branch")
        self.emit("push", repo, author, ref=f"refs/heads/{branch}", before=before,
                  after=commit.sha, commits=[commit])
        return commit

    def create_tag(self, repo: GitHubRepo, name: str, ref: str | None, author: User) -> str:
        """A lightweight tag pushed: GitHub sends ``create`` (ref_type tag) and ``push`` with
        ``ref`` refs/tags/<name>, no commits and the tagged commit as ``head_commit``."""
        sha = self.resolve(repo, ref or repo.default_branch)
        before = repo.git.tags.get(name, ZERO_SHA)
        repo.git.tags[name] = sha
        self.emit("create", repo, author, ref=name, ref_type="tag")
        self.emit("push", repo, author, ref=f"refs/tags/{name}", before=before, after=sha,
                  commits=[])
        return sha

    # -- workflows -----------------------------------------------------------------------------

    def workflow_id(self, repo: GitHubRepo, path: str) -> int:
        if path not in repo.workflow_ids:
            repo.workflow_ids[path] = self.state.new_id("workflow")
        return repo.workflow_ids[path]

    def workflows(self, repo: GitHubRepo, ref: str | None = None) -> list[WorkflowFile]:
        files = self.commit_at(repo, ref).files
        found = [parse(path, text) for path, text in sorted(files.items())
                 if is_workflow_path(path)]
        for wf in found:
            self.workflow_id(repo, wf.path)
        return found

    def workflow(self, repo: GitHubRepo, key: str, ref: str | None = None) -> WorkflowFile:
        """By numeric id or file name (``preview.yml``), as read at ``ref``."""
        for wf in self.workflows(repo, ref):
            if key in (wf.file_name, wf.path, str(repo.workflow_ids[wf.path])):
                return wf
        raise NotFound("Not Found")

    # -- pull requests -------------------------------------------------------------------------

    def pull(self, repo: GitHubRepo, number: int | str) -> PullRequest:
        try:
            return repo.pulls[int(number)]
        except (KeyError, ValueError):
            raise NotFound("Not Found") from None

    def open_pull(self, repo: GitHubRepo, *, head: str, base: str | None, title: str, body: str,
                  author: User, draft: bool = False, labels: Any = None) -> PullRequest:
        """Sends ``opened`` (labels already on), then ``labeled`` once per label, as GitHub does
        for a pull request created with labels."""
        base = base or repo.default_branch
        names = label_names(labels)
        for branch in (head, base):
            if branch not in repo.git.branches:
                raise Invalid(f"branch {branch} does not exist")
        if any(p.head_branch == head and p.base_branch == base and p.state == "open"
               for p in repo.pulls.values()):
            raise Invalid(f"A pull request already exists for {repo.owner.username}:{head}.")
        repo.issue_count += 1
        pr = PullRequest(self.state.new_id("github_pull"), repo.issue_count, head, base,
                         title or head, body, author, repo.git.branches[head],
                         repo.git.branches[base], draft=draft)
        repo.pulls[pr.number] = pr
        pr.labels = self.state.apply_labels(repo.git, [], names)
        self.emit("pull_request", repo, author, pr=pr, action="opened")
        for name in names:
            self.emit("pull_request", repo, author, pr=pr, action="labeled", label=name)
        return pr

    def push_to_pull(self, repo: GitHubRepo, pr: PullRequest, files: dict[str, str | None],
                     message: str, author: User) -> Commit:
        commit = self.commit(repo, pr.head_branch, files, message, author)
        before, pr.head_sha, pr.updated_at = pr.head_sha, commit.sha, now()
        if pr.state == "open":
            self.emit("pull_request", repo, author, pr=pr, action="synchronize", before=before,
                      after=commit.sha)
        return commit

    def edit_pull(self, repo: GitHubRepo, pr: PullRequest, actor: User, *, labels: Any = None,
                  add_labels: Any = None, remove_labels: Any = None, **fields: Any) -> None:
        """Change ``title``, ``body``, ``base`` (→ ``edited`` with ``changes``, sent unless only
        labels changed) and the labels (``labels`` replaces them, ``add_labels`` /
        ``remove_labels`` adjust them; → one ``unlabeled`` / ``labeled`` per label)."""
        new_labels = self.state.apply_labels(repo.git, pr.labels, labels, add_labels,
                                             remove_labels)
        changes: dict[str, Any] = {}
        for name in ("title", "body"):
            value = fields.get(name)
            if value is not None and value != getattr(pr, name):
                changes[name] = {"from": getattr(pr, name)}
                setattr(pr, name, str(value))
        base = fields.get("base")
        if base is not None and base != pr.base_branch:
            if base not in repo.git.branches:
                raise Invalid(f"branch {base} does not exist")
            changes["base"] = {"ref": {"from": pr.base_branch},
                               "sha": {"from": pr.base_sha}}
            pr.base_branch, pr.base_sha = base, repo.git.branches[base]
        pr.updated_at = now()
        removed = [n for n in pr.labels if n not in new_labels]
        added = [n for n in new_labels if n not in pr.labels]
        if changes or not (removed or added):
            self.emit("pull_request", repo, actor, pr=pr, action="edited", changes=changes)
        for name in removed:
            pr.labels = [n for n in pr.labels if n != name]
            self.emit("pull_request", repo, actor, pr=pr, action="unlabeled", label=name)
        for name in added:
            pr.labels = label_names([*pr.labels, name])
            self.emit("pull_request", repo, actor, pr=pr, action="labeled", label=name)

    def set_pull_state(self, repo: GitHubRepo, pr: PullRequest, action: str, actor: User) -> None:
        """``close``, ``reopen`` or ``merge``."""
        if action in ("close", "merge") and pr.state != "open":
            raise Invalid(f"cannot {action} a pull request that is closed")
        if action == "reopen" and (pr.state != "closed" or pr.merged):
            raise Invalid("only a closed, unmerged pull request can be reopened")
        t = now()
        pr.updated_at = t
        if action == "reopen":
            pr.state, pr.closed_at = "open", None
            self.emit("pull_request", repo, actor, pr=pr, action="reopened")
            return
        if action == "merge":
            target = repo.git.commits[repo.git.branches[pr.base_branch]].files
            merged = {**target, **repo.git.commits[pr.head_sha].files}
            commit = self.state.commit(
                repo.git, pr.base_branch, dict(merged),
                f"Merge pull request #{pr.number} from {repo.owner.username}/{pr.head_branch}"
                f"\n\n{pr.title}", actor, replace=True, announce=False)
            pr.merged, pr.merged_at, pr.merged_by, pr.merge_commit_sha = True, t, actor, commit.sha
        pr.state, pr.closed_at = "closed", t
        self.emit("pull_request", repo, actor, pr=pr, action="closed")

    def changes(self, repo: GitHubRepo, pr: PullRequest) -> tuple[str, list[FileChange]]:
        """``(base sha, changed files)``: merge base of the base branch and the head → head."""
        return self.state.changes(repo.git, pr.base_branch, pr.head_sha, pr.base_sha)

    # -- issue comments ------------------------------------------------------------------------

    def comment(self, repo: GitHubRepo, comment_id: int | str) -> tuple[PullRequest, IssueComment]:
        for pr in repo.pulls.values():
            for c in pr.comments:
                if str(c.id) == str(comment_id):
                    return pr, c
        raise NotFound("Not Found")

    @staticmethod
    def _check_body(body: str) -> None:
        if not body:
            raise Invalid("Body cannot be blank")
        if len(body) > MAX_COMMENT:
            raise Invalid(f"Body is too long (maximum is {MAX_COMMENT} characters)")

    def add_comment(self, repo: GitHubRepo, pr: PullRequest, body: str, author: User
                    ) -> IssueComment:
        self._check_body(body)
        c = IssueComment(self.state.new_id("github_comment"), pr.number, body, author)
        pr.comments.append(c)
        self.emit("issue_comment", repo, author, pr=pr, comment=c, action="created")
        return c

    def edit_comment(self, repo: GitHubRepo, pr: PullRequest, c: IssueComment, body: str,
                     actor: User) -> IssueComment:
        self._check_body(body)
        previous, c.body, c.updated_at = c.body, body, now()
        self.emit("issue_comment", repo, actor, pr=pr, comment=c, action="edited",
                  changes={"body": {"from": previous}})
        return c

    # -- hooks ---------------------------------------------------------------------------------

    def add_hook(self, repo: GitHubRepo, url: str, *, secret: str = "", content_type: str = "json",
                 events: list[str] | None = None, active: bool = True) -> GitHubHook:
        if not url:
            raise Invalid("url is missing")
        hook = GitHubHook(self.state.new_id("github_hook"), url, secret or "",
                          _content_type(content_type), list(events or ["push"]), active)
        repo.hooks[hook.id] = hook
        self.emit("ping", repo, self.state.bot, hook=hook)
        return hook

    def hook(self, repo: GitHubRepo, hook_id: int | str) -> GitHubHook:
        try:
            return repo.hooks[int(hook_id)]
        except (KeyError, ValueError):
            raise NotFound("Not Found") from None

    @staticmethod
    def edit_hook(hook: GitHubHook, config: dict[str, Any] | None = None,
                  events: list[str] | None = None, add_events: list[str] | None = None,
                  remove_events: list[str] | None = None, active: bool | None = None) -> None:
        config = config or {}
        if config.get("url"):
            hook.url = str(config["url"])
        if "secret" in config:
            hook.secret = str(config["secret"] or "")
        if config.get("content_type"):
            hook.content_type = _content_type(str(config["content_type"]))
        if events is not None:
            hook.events = list(events)
        hook.events += [e for e in add_events or [] if e not in hook.events]
        hook.events = [e for e in hook.events if e not in (remove_events or [])]
        if active is not None:
            hook.active = bool(active)
        hook.updated_at = now()

    # -- statuses and check runs ---------------------------------------------------------------

    def add_status(self, repo: GitHubRepo, sha: str, state: str, creator: User, *,
                   context: str | None = None, description: str | None = None,
                   target_url: str | None = None) -> GitHubStatus:
        if state not in STATUS_STATES:
            raise Invalid(f"state must be one of {', '.join(STATUS_STATES)}")
        status = GitHubStatus(self.state.new_id("github_status"), self.resolve(repo, sha), state,
                              context or "default", creator, description, target_url)
        repo.statuses.append(status)
        return status

    def statuses_for(self, repo: GitHubRepo, ref: str) -> list[GitHubStatus]:
        sha = self.resolve(repo, ref)
        return sorted((s for s in repo.statuses if s.sha == sha), key=lambda s: s.id,
                      reverse=True)

    def check_run(self, repo: GitHubRepo, check_run_id: int | str) -> CheckRun:
        try:
            return repo.check_runs[int(check_run_id)]
        except (KeyError, ValueError):
            raise NotFound("Not Found") from None

    def new_check_run(self, repo: GitHubRepo, name: str, head_sha: str) -> CheckRun:
        sha = self.resolve(repo, head_sha)
        run = CheckRun(self.state.new_id("github_check_run"), name, sha,
                       self.state.new_id("github_check_suite"))
        repo.check_runs[run.id] = run
        return run

    # -- deployments ---------------------------------------------------------------------------

    def deployment(self, repo: GitHubRepo, deployment_id: int | str) -> Deployment:
        try:
            return repo.deployments[int(deployment_id)]
        except (KeyError, ValueError):
            raise NotFound("Not Found") from None

    def failing_contexts(self, repo: GitHubRepo, sha: str, required: list[str] | None
                         ) -> list[dict[str, str]]:
        """Contexts that block a deployment of ``sha``: each required one (``None``: every context
        the commit has — statuses and check runs) whose latest state is not success (a required
        one the commit lacks is ``missing``)."""
        latest: dict[str, str] = {}
        for st in sorted((x for x in repo.statuses if x.sha == sha), key=lambda x: x.id):
            latest[st.context] = st.state
        for cr in sorted((c for c in repo.check_runs.values() if c.head_sha == sha),
                         key=lambda c: c.id):
            latest[cr.name] = ("success" if cr.conclusion in PASSING_CHECKS else
                               cr.conclusion or "pending")
        wanted = list(latest) if required is None else required
        return [{"context": c, "state": latest.get(c, "missing")} for c in wanted
                if latest.get(c) != "success"]

    def create_deployment(self, repo: GitHubRepo, ref: str, creator: User, *,
                          task: str = "deploy", payload: dict[str, Any] | str | None = None,
                          environment: str = "production", description: str | None = "",
                          transient_environment: bool = False,
                          production_environment: bool | None = None) -> Deployment:
        """Sends ``deployment`` (``created``); unknown ``ref`` → ``NotFound``."""
        sha = self.resolve(repo, ref)
        d = Deployment(
            self.state.new_id("github_deployment"), sha, ref, task or "deploy",
            {} if payload is None or payload == "" else payload, environment, environment,
            creator, description, bool(transient_environment),
            environment == "production" if production_environment is None
            else bool(production_environment))
        repo.deployments[d.id] = d
        self.emit("deployment", repo, creator, deployment=d, action="created")
        return d

    def add_deployment_status(self, repo: GitHubRepo, d: Deployment, state: str, creator: User,
                              *, description: str | None = None, log_url: str | None = None,
                              environment: str | None = None,
                              environment_url: str | None = None, auto_inactive: bool = True,
                              run: WorkflowRun | None = None) -> DeploymentStatus:
        """Sends ``deployment_status`` (``created``). ``environment`` (default: the previous
        status's, else the deployment's) becomes the deployment's. A ``success`` with
        ``auto_inactive`` marks older successful deployments of the same non-production,
        non-transient environment ``inactive`` (each sends its own ``deployment_status``)."""
        if state not in DEPLOYMENT_STATES:
            raise Invalid(f"state must be one of {', '.join(DEPLOYMENT_STATES)}")
        description = description or ""
        if len(description) > MAX_DEPLOYMENT_DESCRIPTION:
            raise Invalid("description is too long (maximum is "
                          f"{MAX_DEPLOYMENT_DESCRIPTION} characters)")
        env = environment or (d.statuses[-1].environment if d.statuses else d.environment)
        status = DeploymentStatus(self.state.new_id("github_deployment_status"), d.id, state,
                                  creator, env, description, log_url or "",
                                  environment_url or "", run.id if run else None)
        d.statuses.append(status)
        d.environment, d.updated_at = env, now()
        self.emit("deployment_status", repo, creator, deployment=d, status=status, run=run,
                  action="created")
        if state == "success" and auto_inactive:
            for older in sorted(repo.deployments.values(), key=lambda x: x.id):
                if (older.id < d.id and older.environment == env
                        and not older.transient_environment
                        and not older.production_environment
                        and older.statuses and older.statuses[-1].state == "success"):
                    self.add_deployment_status(repo, older, "inactive", creator,
                                               auto_inactive=False)
        return status

    def delete_deployment(self, repo: GitHubRepo, d: Deployment) -> None:
        active = not d.statuses or d.statuses[-1].state != "inactive"
        alone = all(o.id == d.id or o.environment != d.environment
                    for o in repo.deployments.values())
        if active and not alone:
            raise Invalid("We cannot delete an active deployment unless it is the only "
                          "deployment in a given environment.")
        del repo.deployments[d.id]

    # -- people and tokens ---------------------------------------------------------------------

    def set_collaborator(self, repo: GitHubRepo, login: str, role: str | None) -> None:
        self.state.user(login)
        if not role or role == "none":
            repo.collaborators.pop(login, None)
        elif role not in ROLES:
            raise Invalid(f"permission must be one of {sorted(ROLES)} or none")
        else:
            repo.collaborators[login] = role

    def role_of(self, repo: GitHubRepo, login: str) -> str | None:
        if login == repo.owner.username:
            return "admin"
        return repo.collaborators.get(login)

    def add_app_token(self, token: str | None = None, installation_id: int | None = None,
                      app_slug: str = "baton") -> AppToken:
        app = AppToken(token or "ghs_" + secrets.token_hex(18),
                       installation_id or self.state.new_id("github_installation"),
                       self.state.new_id("github_app"), app_slug,
                       self.state.user(f"{app_slug}[bot]", name=app_slug))
        self.app_tokens[app.token] = app
        return app


def _content_type(value: str) -> str:
    if value not in ("json", "form"):
        raise Invalid("content_type must be json or form")
    return value
