"""The sandbox forge's world: users, projects, commits, merge requests, notes, hooks, statuses.

Everything lives in memory behind one re-entrant lock (``state.lock``); callers hold it while they
read or change anything. Changes that a forge would announce are published as ``Event``s to the
subscribed listeners (the webhook builders), synchronously and under the lock, so listeners see
events in the order they happened.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sandbox.diffs import FileChange, change_base, changed_files
from sandbox.model import (
    ZERO_SHA,
    Commit,
    CommitStatus,
    Hook,
    Label,
    MergeRequest,
    Note,
    Pipeline,
    Project,
    Trigger,
    User,
    make_sha,
    now,
)

BOT_USERNAME = "baton-bot"


class NotFound(LookupError):
    """The named thing does not exist; ``str(exc)`` is the GitLab-style message."""


class Invalid(ValueError):
    """A request the forge refuses; ``str(exc)`` is the message."""


@dataclass(frozen=True)
class Event:
    kind: str  # "push" | "merge_request" | "note" | "pipeline"
    project: Project
    actor: User
    data: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


class SandboxState:
    def __init__(self, base_url: str = "http://127.0.0.1") -> None:
        self.lock = threading.RLock()
        self.base_url = base_url.rstrip("/")
        self.listeners: list[Listener] = []
        # True when the world is kept in a state file (sandbox/persistence.py): ids then keep
        # counting across resets and restarts, as a real forge never hands out an id twice.
        self.keep_ids = False
        self.version = 0  # bumped on every change; the state file is written when it moves
        self._ids: dict[str, int] = {}
        self.reset()

    # -- bookkeeping ---------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            if not self.keep_ids:
                self._ids = {}
            self.users: dict[int, User] = {}
            self.projects: dict[int, Project] = {}
            self.pipelines: dict[int, Pipeline] = {}
            self.bot = self.user(BOT_USERNAME, name="Baton Bot")
            self.changed()

    def new_id(self, kind: str) -> int:
        with self.lock:
            n = self._ids[kind] = self._ids.get(kind, 0) + 1
            self.changed()
            return n

    def changed(self) -> None:
        self.version += 1

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, kind: str, project: Project, actor: User, **data: Any) -> None:
        self.changed()
        event = Event(kind, project, actor, data)
        for listener in self.listeners:
            listener(event)

    # -- users ---------------------------------------------------------------------------------

    def user(self, username: str | None, name: str | None = None) -> User:
        """The user called ``username``, created on first use (``None`` means the bot)."""
        if not username:
            return self.bot
        for u in self.users.values():
            if u.username == username:
                return u
        u = User(self.new_id("user"), username, name or username.replace(".", " ").title())
        self.users[u.id] = u
        return u

    def get_user(self, user_id: int) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise NotFound("404 User Not Found") from None

    # -- projects and repository ---------------------------------------------------------------

    def create_project(
        self,
        path: str,
        *,
        default_branch: str = "main",
        files: dict[str, str] | None = None,
        description: str = "",
    ) -> Project:
        path = path.strip("/")
        if not path:
            raise Invalid("path is required")
        if any(p.path_with_namespace == path for p in self.projects.values()):
            raise Invalid(f"project {path} already exists")
        pid = self.new_id("project")
        project = Project(
            pid, path, default_branch, f"{self.base_url}/{path}", description=description
        )
        self.projects[pid] = project
        self._add_commit(project, default_branch, files or {"README.md": f"# {path}\n"},
                         "Initial commit", self.bot)
        return project

    def project(self, ref: str | int) -> Project:
        """By numeric id or (URL-encoded or plain) full path."""
        key = unquote(str(ref))
        if key.isdigit() and int(key) in self.projects:
            return self.projects[int(key)]
        for p in self.projects.values():
            if p.path_with_namespace == key:
                return p
        raise NotFound("404 Project Not Found")

    def _add_commit(
        self, project: Project, branch: str, files: dict[str, str], message: str, author: User
    ) -> Commit:
        parent = project.branches.get(branch)
        created = now()
        sha = make_sha(project.id, branch, parent, sorted(files.items()), message, created,
                       secrets.token_hex(4))
        commit = Commit(sha, dict(files), message, author, created, parent)
        project.commits[sha] = commit
        project.branches[branch] = sha
        return commit

    def commit(
        self,
        project: Project,
        branch: str,
        files: dict[str, str | None],
        message: str = "Update files",
        author: User | None = None,
        *,
        replace: bool = False,
        announce: bool = True,
    ) -> Commit:
        """Commit ``files`` on ``branch`` (created from the default branch if new).

        Files are merged over the branch's current snapshot (a ``None`` value deletes the file)
        unless ``replace`` is true. Sends a Push Hook unless ``announce`` is false.
        """
        author = author or self.bot
        base_sha = project.branches.get(branch) or project.branches.get(project.default_branch)
        snapshot = {} if replace or base_sha is None else dict(project.commits[base_sha].files)
        for path, text in files.items():
            if text is None:
                snapshot.pop(path, None)
            else:
                snapshot[path] = text
        before = project.branches.get(branch, ZERO_SHA)
        if before == ZERO_SHA and base_sha is not None:
            project.branches[branch] = base_sha  # branch off the default branch
        commit = self._add_commit(project, branch, snapshot, message, author)
        if announce:
            self.emit("push", project, author, branch=branch, before=before, after=commit.sha,
                      commits=[commit])
        return commit

    def create_tag(self, project: Project, name: str, ref: str, author: User | None = None,
                   *, announce: bool = True) -> str:
        """A lightweight tag ``name`` at ``ref``; sends a Tag Push Hook unless ``announce`` is
        false (GitLab fires it for tags created by a push, the UI or the API alike)."""
        sha = self.resolve(project, ref)
        before = project.tags.get(name, ZERO_SHA)
        project.tags[name] = sha
        if announce:
            self.emit("tag_push", project, author or self.bot, tag=name, before=before, after=sha)
        return sha

    def changed_files(self, project: Project, commit: Commit) -> dict[str, list[str]]:
        """``added`` / ``modified`` / ``removed`` paths of ``commit`` against its parent, as push
        webhooks list them."""
        parent = project.commits.get(commit.parent or "")
        old = parent.files if parent else {}
        return {
            "added": sorted(set(commit.files) - set(old)),
            "modified": sorted(p for p in commit.files if p in old and old[p] != commit.files[p]),
            "removed": sorted(set(old) - set(commit.files)),
        }

    def resolve(self, project: Project, ref: str | None) -> str:
        """A branch, tag, MR head ref, ``HEAD`` or (abbreviated) sha → full sha."""
        ref = unquote(ref or "HEAD")
        if ref == "HEAD":
            ref = project.default_branch
        for prefix in ("refs/heads/", "refs/tags/"):
            ref = ref.removeprefix(prefix)
        if ref in project.branches:
            return project.branches[ref]
        if ref in project.tags:
            return project.tags[ref]
        if ref.startswith("refs/merge-requests/"):
            iid = ref.split("/")[2]
            if iid.isdigit() and int(iid) in project.merge_requests:
                return project.merge_requests[int(iid)].sha
        if ref in project.commits:
            return ref
        if len(ref) >= 7:
            matches = [sha for sha in project.commits if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        raise NotFound("404 Commit Not Found")

    def get_commit(self, project: Project, ref: str | None) -> Commit:
        return project.commits[self.resolve(project, ref)]

    def changes(self, project: Project, target_branch: str, head: str, opened_base: str
                ) -> tuple[str, list[FileChange]]:
        """``(base sha, changed files)`` of a change from ``head`` into ``target_branch``: base is
        the merge base with the branch's current head (else ``opened_base``)."""
        base = change_base(project.commits, project.branches.get(target_branch), head,
                           opened_base)
        return base, changed_files(project.commits[base].files, project.commits[head].files)

    # -- labels --------------------------------------------------------------------------------

    def label(self, project: Project, name: str) -> Label:
        """The project's label ``name``, created (with a colour derived from the name) on first
        use."""
        if name not in project.labels:
            project.labels[name] = Label(self.new_id("label"), name,
                                         "#" + make_sha("label", name)[:6])
        return project.labels[name]

    def apply_labels(self, project: Project, current: list[str], labels: Any = None,
                     add: Any = None, remove: Any = None) -> list[str]:
        """The label names after replacing them with ``labels`` (if given), adding ``add`` and
        removing ``remove``; every resulting label exists in the project."""
        names = label_names(labels) if labels is not None else list(current)
        names = label_names([*names, *label_names(add)])
        dropped = set(label_names(remove))
        names = [n for n in names if n not in dropped]
        for name in names:
            self.label(project, name)
        return names

    # -- merge requests ------------------------------------------------------------------------

    def merge_request(self, project: Project, iid: int | str) -> MergeRequest:
        try:
            return project.merge_requests[int(iid)]
        except (KeyError, ValueError):
            raise NotFound("404 Not found") from None

    def open_merge_request(
        self,
        project: Project,
        *,
        source_branch: str,
        target_branch: str | None = None,
        title: str = "",
        description: str = "",
        author: User,
        source_project: Project | None = None,
        labels: Any = None,
    ) -> MergeRequest:
        source_project = source_project or project
        target_branch = target_branch or project.default_branch
        if source_branch not in source_project.branches:
            raise Invalid(f"source branch {source_branch} does not exist")
        if target_branch not in project.branches:
            raise Invalid(f"target branch {target_branch} does not exist")
        project.mr_count += 1
        mr = MergeRequest(
            id=self.new_id("merge_request"),
            iid=project.mr_count,
            project_id=project.id,
            source_project_id=source_project.id,
            source_branch=source_branch,
            target_branch=target_branch,
            title=title or f"Merge {source_branch} into {target_branch}",
            description=description,
            author=author,
            sha=source_project.branches[source_branch],
            base_sha=project.branches[target_branch],
            labels=self.apply_labels(project, [], labels),
        )
        if source_project is not project:  # the fork's commits become visible in the target
            project.commits.update(source_project.commits)
        project.merge_requests[mr.iid] = mr
        self.emit("merge_request", project, author, mr=mr, action="open", changes={})
        return mr

    def push_to_merge_request(
        self, mr: MergeRequest, files: dict[str, str | None], message: str, author: User
    ) -> Commit:
        project = self.projects[mr.project_id]
        source = self.projects[mr.source_project_id]
        commit = self.commit(source, mr.source_branch, files, message, author)
        if source is not project:
            project.commits[commit.sha] = commit
        oldrev, mr.sha, mr.updated_at = mr.sha, commit.sha, now()
        self.emit("merge_request", project, author, mr=mr, action="update", oldrev=oldrev,
                  changes={})
        return commit

    def edit_merge_request(self, mr: MergeRequest, actor: User, *, labels: Any = None,
                           add_labels: Any = None, remove_labels: Any = None, **fields: str
                           ) -> None:
        """Change ``title``, ``description``, ``target_branch`` and the labels (``labels``
        replaces them; ``add_labels`` / ``remove_labels`` adjust them); sends an ``update`` hook
        whose ``changes`` name what changed (``labels`` as previous/current names)."""
        project = self.projects[mr.project_id]
        target = fields.get("target_branch")
        if target is not None and target not in project.branches:
            raise Invalid(f"target branch {target} does not exist")
        new_labels = self.apply_labels(project, mr.labels, labels, add_labels, remove_labels)
        changes: dict[str, Any] = {}
        for name in ("title", "description", "target_branch"):
            if name in fields and fields[name] is not None and fields[name] != getattr(mr, name):
                changes[name] = {"previous": getattr(mr, name), "current": fields[name]}
                setattr(mr, name, fields[name])
        if "target_branch" in changes:
            mr.base_sha = project.branches[mr.target_branch]
        if new_labels != mr.labels:
            changes["labels"] = {"previous": mr.labels, "current": new_labels}
            mr.labels = new_labels
        mr.updated_at = now()
        self.emit("merge_request", self.projects[mr.project_id], actor, mr=mr, action="update",
                  changes=changes)

    def set_merge_request_state(self, mr: MergeRequest, action: str, actor: User) -> None:
        """``close``, ``reopen`` or ``merge`` an MR."""
        project = self.projects[mr.project_id]
        allowed = {"close": {"opened"}, "reopen": {"closed"}, "merge": {"opened"}}
        if mr.state not in allowed[action]:
            raise Invalid(f"cannot {action} a merge request that is {mr.state}")
        previous = mr.state
        mr.updated_at = now()
        if action == "close":
            mr.state, mr.closed_at, mr.closed_by = "closed", mr.updated_at, actor
        elif action == "reopen":
            mr.state, mr.closed_at, mr.closed_by = "opened", None, None
        else:
            source = self.projects[mr.source_project_id]
            target_files = project.commits[project.branches[mr.target_branch]].files
            merged_files = {**target_files, **source.commits[mr.sha].files}
            merge = self.commit(
                project, mr.target_branch, dict(merged_files),
                f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'\n\n{mr.title}",
                actor, replace=True,
            )
            mr.state, mr.merged_at, mr.merged_by = "merged", mr.updated_at, actor
            mr.merge_commit_sha = merge.sha
        changes = {
            "state_id": {
                "previous": MergeRequest.STATE_IDS[previous],
                "current": MergeRequest.STATE_IDS[mr.state],
            }
        }
        self.emit("merge_request", project, actor, mr=mr, action=action, changes=changes)

    # -- notes ---------------------------------------------------------------------------------

    def add_note(self, mr: MergeRequest, body: str, author: User) -> Note:
        if not body:
            raise Invalid("body is missing")
        note = Note(self.new_id("note"), mr.project_id, mr.iid, body, author)
        mr.notes.append(note)
        self.emit("note", self.projects[mr.project_id], author, note=note, mr=mr, action="create")
        return note

    def note(self, mr: MergeRequest, note_id: int | str) -> Note:
        for n in mr.notes:
            if str(n.id) == str(note_id):
                return n
        raise NotFound("404 Note Not Found")

    def edit_note(self, mr: MergeRequest, note: Note, body: str, actor: User) -> Note:
        if not body:
            raise Invalid("body is missing")
        note.body, note.updated_at = body, now()
        self.emit("note", self.projects[mr.project_id], actor, note=note, mr=mr, action="update")
        return note

    # -- hooks, triggers, members, statuses ----------------------------------------------------

    def add_hook(self, project: Project, url: str, token: str = "", **flags: bool) -> Hook:
        if not url:
            raise Invalid("url is missing")
        hook = Hook(self.new_id("hook"), project.id, url, token or "")
        self.update_hook(hook, **flags)
        project.hooks[hook.id] = hook
        return hook

    @staticmethod
    def update_hook(hook: Hook, **fields: Any) -> None:
        for name, value in fields.items():
            if name in Hook.EVENT_FLAGS and value is not None:
                setattr(hook, name, _truthy(value))
            elif name in ("url", "token") and value is not None:
                setattr(hook, name, str(value))

    def hook(self, project: Project, hook_id: int | str) -> Hook:
        try:
            return project.hooks[int(hook_id)]
        except (KeyError, ValueError):
            raise NotFound("404 Not found") from None

    def add_trigger(self, project: Project, description: str = "", owner: User | None = None
                    ) -> Trigger:
        trigger = Trigger(self.new_id("trigger"), project.id, "glptt-" + secrets.token_hex(20),
                          description, owner or self.bot)
        project.triggers[trigger.id] = trigger
        return trigger

    def find_trigger(self, project: Project, token: str) -> Trigger:
        for trigger in project.triggers.values():
            if secrets.compare_digest(trigger.token, token):
                return trigger
        raise NotFound("404 Not Found")

    def set_member(self, project: Project, username: str, access_level: int) -> User:
        user = self.user(username)
        if access_level:
            project.members[user.id] = int(access_level)
        else:
            project.members.pop(user.id, None)
        return user

    def set_status(
        self, project: Project, sha: str, state: str, name: str, author: User, **fields: Any
    ) -> CommitStatus:
        """GitLab's ``Ci::CreateCommitStatusService``: the status of that name, ref and sha that
        is still pending or running moves on by the state machine of ``CommitStatus``; when there
        is none (or the last one finished) a new status record starts from ``created``. A move the
        machine does not allow raises ``Invalid`` with GitLab's message."""
        if state not in _STATUS_EVENTS:
            raise Invalid("state does not have a valid value")
        sha = self.resolve(project, sha)
        ref = fields.get("ref") or self._ref_of(project, sha)
        status = next((s for s in reversed(project.statuses)
                       if s.sha == sha and s.name == name and s.ref == ref
                       and s.status in ("pending", "running")), None)
        if status is None:
            status = CommitStatus(self.new_id("status"), project.id, sha, name, "created", author,
                                  ref=ref)
            fresh = True
        else:
            fresh = False
        current = status.status
        if state == "running" and current in _ALLOWED["enqueue"]:
            current = "pending"  # "running" first enqueues (quietly), then runs
        event = _STATUS_EVENTS[state]
        if current not in _ALLOWED[event]:
            raise Invalid(f"Cannot transition status via :{event} from :{current} "
                          f'(Reason(s): Status cannot transition via "{event}")')
        if fresh:
            project.statuses.append(status)
        status.status = state
        for key in ("target_url", "description", "coverage", "pipeline_id"):
            if fields.get(key) is not None:
                setattr(status, key, fields[key])
        t = now()
        if state == "running" and status.started_at is None:
            status.started_at = t
        status.finished_at = t if state in {"success", "failed", "canceled", "skipped"} else None
        return status

    def _ref_of(self, project: Project, sha: str) -> str | None:
        """GitLab's default ref of a status: the ref of the newest pipeline of the commit, else
        the first branch that contains it."""
        mine = [p for p in self.pipelines.values() if p.project_id == project.id and p.sha == sha]
        if mine:
            return max(mine, key=lambda p: p.id).ref
        for branch, head in sorted(project.branches.items()):
            seen: str | None = head
            while seen is not None and seen in project.commits:
                if seen == sha:
                    return branch
                seen = project.commits[seen].parent
        return None


# GitLab's CommitStatus state machine (app/models/commit_status.rb): the event each posted state
# fires (app/services/ci/create_commit_status_service.rb) and the states it may fire from.
_STATUS_EVENTS = {"pending": "enqueue", "running": "run", "success": "success",
                  "failed": "drop", "canceled": "cancel", "skipped": "skip"}
_ALLOWED = {
    "enqueue": {"created", "skipped", "manual"},
    "run": {"pending"},
    "skip": {"created", "pending"},
    "drop": {"created", "pending", "running"},
    "success": {"created", "pending", "running"},
    "cancel": {"created", "pending", "running", "manual"},
}


def label_names(value: Any) -> list[str]:
    """Label names from a list of strings or a comma-separated string: stripped, without
    duplicates, sorted by name (case-insensitively)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise Invalid("labels must be a list of names")
    names = {v.strip() for v in value if v.strip()}
    return sorted(names, key=lambda n: (n.casefold(), n))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
