"""GitLab REST v4 JSON shapes of the sandbox records (API entities, not webhook payloads)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from sandbox.diffs import FileChange
from sandbox.model import (
    Commit,
    CommitStatus,
    Hook,
    Job,
    MergeRequest,
    Note,
    Pipeline,
    Project,
    Trigger,
    User,
    iso,
    make_sha,
)
from sandbox.state import SandboxState

_LABELS = {"success": "passed"}
_FAVICON = "/assets/ci_favicons/favicon_status_{}.png"


def user(state: SandboxState, u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "state": "active",
        "locked": False,
        "avatar_url": f"https://www.gravatar.com/avatar/{make_sha(u.username)}?s=80&d=identicon",
        "web_url": f"{state.base_url}/{u.username}",
    }


def current_user(state: SandboxState, u: User) -> dict[str, Any]:
    return {**user(state, u), "email": u.email, "public_email": "", "bot": u is state.bot,
            "is_admin": False, "created_at": "2024-01-01T00:00:00.000Z"}


def group(state: SandboxState, full_path: str, group_id: int) -> dict[str, Any]:
    """A group as ``GET /groups`` lists it."""
    path = full_path.rsplit("/", 1)[-1]
    return {
        "id": group_id,
        "name": path.replace("-", " ").title(),
        "path": path,
        "full_name": " / ".join(p.replace("-", " ").title() for p in full_path.split("/")),
        "full_path": full_path,
        "description": "",
        "visibility": "private",
        "parent_id": None,
        "avatar_url": None,
        "web_url": f"{state.base_url}/groups/{full_path}",
        "created_at": "2024-01-01T00:00:00.000Z",
    }


def member(state: SandboxState, u: User, access_level: int) -> dict[str, Any]:
    return {**user(state, u), "access_level": access_level, "email": u.email,
            "expires_at": None, "group_saml_identity": None, "created_at": None}


def namespace(state: SandboxState, project: Project) -> dict[str, Any]:
    full = project.namespace or project.path
    return {
        "id": project.id,
        "name": full.rsplit("/", 1)[-1].title(),
        "path": full.rsplit("/", 1)[-1],
        "kind": "group" if project.namespace else "user",
        "full_path": full,
        "parent_id": None,
        "avatar_url": None,
        "web_url": f"{state.base_url}/groups/{full}",
    }


def project(state: SandboxState, p: Project) -> dict[str, Any]:
    api = f"{state.base_url}/api/v4/projects/{p.id}"
    host = state.base_url.split("://", 1)[-1]
    return {
        "id": p.id,
        "description": p.description,
        "name": p.name,
        "name_with_namespace": " / ".join(x.title() for x in p.path_with_namespace.split("/")),
        "path": p.path,
        "path_with_namespace": p.path_with_namespace,
        "created_at": iso(p.created_at),
        "last_activity_at": iso(p.created_at),
        "default_branch": p.default_branch,
        "visibility": "private",
        "ssh_url_to_repo": f"git@{host.split(':')[0]}:{p.path_with_namespace}.git",
        "http_url_to_repo": f"{p.web_url}.git",
        "web_url": p.web_url,
        "readme_url": None,
        "topics": [],
        "tag_list": [],
        "namespace": namespace(state, p),
        "archived": False,
        "empty_repo": False,
        "jobs_enabled": True,
        "merge_requests_enabled": True,
        "issues_enabled": True,
        "ci_config_path": None,
        "forked_from_project": None,
        "permissions": {"project_access": {"access_level": 40, "notification_level": 3},
                        "group_access": None},
        "_links": {
            "self": api,
            "issues": f"{api}/issues",
            "merge_requests": f"{api}/merge_requests",
            "repo_branches": f"{api}/repository/branches",
            "labels": f"{api}/labels",
            "events": f"{api}/events",
            "members": f"{api}/members",
        },
    }


def commit(p: Project, c: Commit) -> dict[str, Any]:
    return {
        "id": c.sha,
        "short_id": c.sha[:8],
        "title": c.title,
        "message": c.message,
        "author_name": c.author.name,
        "author_email": c.author.email,
        "authored_date": iso(c.created_at),
        "committer_name": c.author.name,
        "committer_email": c.author.email,
        "committed_date": iso(c.created_at),
        "created_at": iso(c.created_at),
        "parent_ids": [c.parent] if c.parent else [],
        "web_url": f"{p.web_url}/-/commit/{c.sha}",
        "trailers": {},
        "extended_trailers": {},
    }


def branch(p: Project, name: str, c: Commit) -> dict[str, Any]:
    return {
        "name": name,
        "commit": commit(p, c),
        "merged": False,
        "protected": name == p.default_branch,
        "developers_can_push": False,
        "developers_can_merge": False,
        "can_push": True,
        "default": name == p.default_branch,
        "web_url": f"{p.web_url}/-/tree/{name}",
    }


def file(p: Project, c: Commit, path: str, ref: str) -> dict[str, Any]:
    data = c.files[path].encode()
    return {
        "file_name": path.rsplit("/", 1)[-1],
        "file_path": path,
        "size": len(data),
        "encoding": "base64",
        "content": base64.b64encode(data).decode(),
        "content_sha256": hashlib.sha256(data).hexdigest(),
        "ref": ref,
        "blob_id": make_sha("blob", data),
        "commit_id": c.sha,
        "last_commit_id": c.sha,
        "execute_filemode": False,
    }


def detailed_status(p: Project, pl: Pipeline) -> dict[str, Any]:
    label = _LABELS.get(pl.status, pl.status)
    return {
        "icon": f"status_{pl.status}",
        "text": label,
        "label": label,
        "group": pl.status,
        "tooltip": label,
        "has_details": True,
        "details_path": f"/{p.path_with_namespace}/-/pipelines/{pl.id}",
        "illustration": None,
        "favicon": _FAVICON.format(pl.status),
    }


def pipeline_basic(p: Project, pl: Pipeline) -> dict[str, Any]:
    return {
        "id": pl.id,
        "iid": pl.iid,
        "project_id": p.id,
        "sha": pl.sha,
        "ref": pl.ref,
        "status": pl.status,
        "source": pl.source,
        "name": None,
        "created_at": iso(pl.created_at),
        "updated_at": iso(pl.updated_at),
        "web_url": f"{p.web_url}/-/pipelines/{pl.id}",
    }


def pipeline(state: SandboxState, p: Project, pl: Pipeline) -> dict[str, Any]:
    return {
        **pipeline_basic(p, pl),
        "before_sha": p.commits[pl.sha].parent or "0" * 40,
        "tag": pl.tag,
        "yaml_errors": None,
        "user": user(state, pl.user),
        "started_at": iso(pl.started_at),
        "finished_at": iso(pl.finished_at),
        "committed_at": None,
        "duration": pl.duration,
        "queued_duration": pl.queued_duration,
        "coverage": None,
        "archived": False,
        "detailed_status": detailed_status(p, pl),
    }


def job(state: SandboxState, p: Project, pl: Pipeline, j: Job) -> dict[str, Any]:
    duration = None
    if j.started_at is not None and j.finished_at is not None:
        duration = round(j.finished_at - j.started_at, 3)
    return {
        "id": j.id,
        "name": j.name,
        "stage": j.stage,
        "status": j.status,
        "ref": pl.ref,
        "tag": pl.tag,
        "coverage": None,
        "allow_failure": False,
        "created_at": iso(j.created_at),
        "started_at": iso(j.started_at),
        "finished_at": iso(j.finished_at),
        "erased_at": None,
        "duration": duration,
        "queued_duration": None,
        "failure_reason": j.failure_reason if j.status == "failed" else None,
        "web_url": f"{p.web_url}/-/jobs/{j.id}",
        "artifacts": [],
        "artifacts_expire_at": None,
        "tag_list": [],
        "runner": None,
        "commit": commit(p, p.commits[pl.sha]),
        "pipeline": pipeline_basic(p, pl),
        "project": {"ci_job_token_scope_enabled": False},
        "user": user(state, pl.user),
    }


def variable(v: dict[str, str]) -> dict[str, Any]:
    return {"key": v["key"], "value": v["value"],
            "variable_type": v.get("variable_type") or "env_var", "raw": False}


def merge_request(
    state: SandboxState, p: Project, mr: MergeRequest, head: Pipeline | None
) -> dict[str, Any]:
    head_json = pipeline(state, p, head) if head else None
    base, changes = state.changes(p, mr.target_branch, mr.sha, mr.base_sha)
    return {
        "id": mr.id,
        "iid": mr.iid,
        "project_id": p.id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "imported": False,
        "imported_from": "none",
        "created_at": iso(mr.created_at),
        "updated_at": iso(mr.updated_at),
        "merged_by": user(state, mr.merged_by) if mr.merged_by else None,
        "merge_user": user(state, mr.merged_by) if mr.merged_by else None,
        "merged_at": iso(mr.merged_at),
        "closed_by": user(state, mr.closed_by) if mr.closed_by else None,
        "closed_at": iso(mr.closed_at),
        "target_branch": mr.target_branch,
        "source_branch": mr.source_branch,
        "user_notes_count": sum(1 for n in mr.notes if not n.system),
        "upvotes": 0,
        "downvotes": 0,
        "author": user(state, mr.author),
        "assignees": [],
        "assignee": None,
        "reviewers": [],
        "source_project_id": mr.source_project_id,
        "target_project_id": mr.project_id,
        "labels": list(mr.labels),
        "draft": False,
        "work_in_progress": False,
        "milestone": None,
        "merge_when_pipeline_succeeds": False,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable" if mr.state == "opened" else "not_open",
        "sha": mr.sha,
        "merge_commit_sha": mr.merge_commit_sha,
        "squash_commit_sha": None,
        "discussion_locked": None,
        "should_remove_source_branch": None,
        "force_remove_source_branch": False,
        "reference": f"!{mr.iid}",
        "references": {"short": f"!{mr.iid}", "relative": f"!{mr.iid}",
                       "full": f"{p.path_with_namespace}!{mr.iid}"},
        "web_url": f"{p.web_url}/-/merge_requests/{mr.iid}",
        "time_stats": {"time_estimate": 0, "total_time_spent": 0,
                       "human_time_estimate": None, "human_total_time_spent": None},
        "squash": False,
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_conflicts": False,
        "blocking_discussions_resolved": True,
        "changes_count": str(len(changes)),
        "pipeline": pipeline_basic(p, head) if head else None,
        "head_pipeline": head_json,
        "diff_refs": {"base_sha": base, "head_sha": mr.sha,
                      "start_sha": p.branches.get(mr.target_branch, mr.base_sha)},
        "merge_error": None,
        "first_contribution": False,
        "user": {"can_merge": True},
    }


def mr_diff(change: FileChange, *, unidiff: bool = False) -> dict[str, Any]:
    """One item of "List merge request diffs" (and of ``changes`` in ``/changes``); ``unidiff``
    adds the ``--- a/…`` / ``+++ b/…`` header lines to ``diff``."""
    added, removed = change.status == "added", change.status == "removed"
    diff = change.patch
    if unidiff and diff:
        old = "/dev/null" if added else f"a/{change.old_path}"
        new = "/dev/null" if removed else f"b/{change.new_path}"
        diff = f"--- {old}\n+++ {new}\n{diff}"
    return {
        "old_path": change.old_path,
        "new_path": change.new_path,
        "a_mode": "0" if added else "100644",
        "b_mode": "0" if removed else "100644",
        "new_file": added,
        "renamed_file": change.status == "renamed",
        "deleted_file": removed,
        "generated_file": False,
        "diff": diff,
    }


def note(state: SandboxState, n: Note, mr: MergeRequest) -> dict[str, Any]:
    return {
        "id": n.id,
        "type": None,
        "body": n.body,
        "author": {**user(state, n.author), "email": n.author.email},
        "created_at": iso(n.created_at),
        "updated_at": iso(n.updated_at),
        "system": n.system,
        "noteable_id": mr.id,
        "noteable_type": "MergeRequest",
        "project_id": n.project_id,
        "noteable_iid": mr.iid,
        "commands_changes": {},
        "resolvable": False,
        "confidential": False,
        "internal": False,
        "imported": False,
        "imported_from": "none",
    }


def commit_status(state: SandboxState, s: CommitStatus) -> dict[str, Any]:
    return {
        "id": s.id,
        "sha": s.sha,
        "ref": s.ref,
        "status": s.status,
        "name": s.name,
        "target_url": s.target_url,
        "description": s.description,
        "created_at": iso(s.created_at),
        "started_at": iso(s.started_at),
        "finished_at": iso(s.finished_at),
        "allow_failure": False,
        "coverage": s.coverage,
        "pipeline_id": s.pipeline_id,
        "author": user(state, s.author),
    }


def hook(h: Hook) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": h.id,
        "url": h.url,
        "name": None,
        "description": None,
        "project_id": h.project_id,
        "created_at": iso(h.created_at),
        "alert_status": h.alert_status,
        "disabled_until": iso(h.disabled_until) if h.alert_status != "executable" else None,
        "push_events_branch_filter": None,
        "branch_filter_strategy": "wildcard",
        "custom_webhook_template": "",
        "confidential_note_events": False,
        "issues_events": False,
        "wiki_page_events": False,
        "deployment_events": False,
        "releases_events": False,
        "repository_update_events": False,
    }
    data.update({flag: getattr(h, flag) for flag in Hook.EVENT_FLAGS})
    return data


def trigger(state: SandboxState, t: Trigger) -> dict[str, Any]:
    return {
        "id": t.id,
        "description": t.description,
        "token": t.token,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.created_at),
        "last_used": iso(t.last_used),
        "expires_at": None,
        "owner": user(state, t.owner),
    }
